print("palitrain: no commands yet")
