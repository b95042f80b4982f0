# The private one-node Slurm cluster of scripts/slurm-check: packages, slurm.conf, the
# daemons, and helpers to submit a batch job and wait for it. Sourced by slurm-check,
# which sets `workdir`, `log` and `fail`.

munged_pid="" slurmctld_pid="" slurmd_pid=""
node_name=""
checks_finished=0

# Installs slurm-wlm (slurmctld, slurmd, the client commands and the PMIx plugin) and
# munge when either is missing.
install_missing_packages() {
    local packages=(slurm-wlm munge iproute2) missing=() package
    for package in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then return; fi

    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    # The packages register systemd units, which stay stopped without a running systemd.
    # This script starts its own daemons with its own config either way.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Prints a TCP port in 20000-29999 that nothing listens on, nor on the port after it.
pick_free_port_pair() {
    local attempt port listening
    listening=$(ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }')
    for attempt in $(seq 1 50); do
        port=$((20000 + RANDOM % 9999))
        if ! grep -qx -e "$port" -e "$((port + 1))" <<<"$listening"; then
            echo "$port"
            return
        fi
    done
    fail "found no free pair of TCP ports in 20000-29999 after 50 tries"
}

# Writes $workdir/etc/slurm.conf for one node named after this host, with the CPU and
# memory layout that `slurmd -C` detects. No cgroups: sandboxes and containers rarely
# allow them, so process tracking walks /proc and tasks are not bound to cores.
write_slurm_conf() {
    local node_line port
    node_line=$(slurmd -C | head -n 1)
    [[ "$node_line" == NodeName=* ]] || fail "'slurmd -C' printed '$node_line', expected a NodeName= line"
    node_name=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node_line")
    port=$(pick_free_port_pair)

    mkdir -p "$workdir"/{etc,state,spool,log,munge-key,munge-run,jobs,tmp}
    cat > "$workdir/etc/slurm.conf" <<EOF
ClusterName=slurmcheck
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$workdir/munge-run/munge.socket
StateSaveLocation=$workdir/state
SlurmdSpoolDir=$workdir/spool
SlurmctldPidFile=$workdir/state/slurmctld.pid
SlurmdPidFile=$workdir/spool/slurmd.pid
SlurmctldLogFile=$workdir/log/slurmctld.log
SlurmdLogFile=$workdir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$workdir/log/jobcomp.txt
MailProg=/bin/true
TmpFS=$workdir/tmp
ReturnToService=2
KillWait=10
MinJobAge=3600
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=check Nodes=$node_name Default=YES MaxTime=INFINITE State=UP
EOF
}

# Fails with the output of a daemon that exited while the script waited for it.
check_daemon_alive() {
    local name=$1 pid=$2
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "--- $workdir/log/$name.out" >&2
        tail -n 30 "$workdir/log/$name.out" >&2 || true
        fail "$name (pid $pid) exited unexpectedly; its last output is above"
    fi
}

# Runs a command every second until it succeeds. Returns 1 after `timeout` seconds, and
# fails the script when a Slurm daemon exits meanwhile.
wait_until() {
    local timeout=$1 what=$2 waited=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ "$waited" -ge "$timeout" ]; then
            log "timed out after ${timeout}s waiting for $what" >&2
            return 1
        fi
        if [ -n "$slurmctld_pid" ]; then check_daemon_alive slurmctld "$slurmctld_pid"; fi
        if [ -n "$slurmd_pid" ]; then check_daemon_alive slurmd "$slurmd_pid"; fi
        sleep 1
        waited=$((waited + 1))
    done
}

node_is_idle() {
    [ "$(sinfo -h -N -n "$node_name" -o '%T')" = "idle" ]
}

munge_round_trip() {
    munge -n --socket="$workdir/munge-run/munge.socket" | unmunge --socket="$workdir/munge-run/munge.socket"
}

# Starts munged with a fresh key, then slurmctld and slurmd, each in the foreground of a
# background job of this shell, so that their PIDs are known and cleanup can stop them.
start_cluster() {
    # munged rejects a socket folder that other users cannot traverse.
    chmod 755 "$workdir"
    write_slurm_conf
    export SLURM_CONF=$workdir/etc/slurm.conf

    chmod 700 "$workdir/munge-key"
    mungekey --create --keyfile="$workdir/munge-key/munge.key"
    munged --foreground \
        --socket="$workdir/munge-run/munge.socket" \
        --key-file="$workdir/munge-key/munge.key" \
        --pid-file="$workdir/munge-run/munged.pid" \
        --seed-file="$workdir/munge-key/munged.seed" \
        >"$workdir/log/munged.out" 2>&1 &
    munged_pid=$!
    wait_until 20 "munged to answer on its socket" munge_round_trip || fail "munged did not start; see $workdir/log/munged.out"
    log "munged is running (pid $munged_pid)"

    slurmctld -D -f "$SLURM_CONF" >"$workdir/log/slurmctld.out" 2>&1 &
    slurmctld_pid=$!
    wait_until 30 "slurmctld to answer 'scontrol ping'" scontrol ping || fail "slurmctld did not start"
    log "slurmctld is running (pid $slurmctld_pid, $(scontrol show config | awk '/^SLURM_VERSION/ { print "Slurm " $3 }'))"

    slurmd -D -f "$SLURM_CONF" -N "$node_name" >"$workdir/log/slurmd.out" 2>&1 &
    slurmd_pid=$!
    wait_until 60 "node $node_name to become idle in sinfo" node_is_idle || fail "slurmd did not register"
    log "slurmd is running (pid $slurmd_pid); node $node_name is idle:"
    sinfo -N -o '%N %P %T %c %m' | sed 's/^/    /'
}

# Stops the process `pid` with SIGTERM, then SIGKILL after 15 s, and reaps it.
stop_process() {
    local name=$1 pid=$2 waited=0
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then return; fi
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 15 ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Cancels the jobs still known to slurmctld, then stops slurmd, slurmctld and munged, and
# removes the temporary folder unless --keep was given.
cleanup() {
    local status=$? waited=0
    trap - EXIT INT TERM
    if [ -n "$slurmctld_pid" ] && kill -0 "$slurmctld_pid" 2>/dev/null; then
        scancel --quiet --user="$(id -un)" 2>/dev/null || true
        while [ -n "$(squeue -h -t RUNNING,COMPLETING,PENDING -o %i 2>/dev/null)" ] && [ "$waited" -lt 30 ]; do
            sleep 1
            waited=$((waited + 1))
        done
        if [ -n "$(squeue -h -t RUNNING,COMPLETING,PENDING -o %i 2>/dev/null)" ]; then
            log "warning: jobs still running after scancel; their processes may outlive slurmd:"
            squeue >&2 || true
        fi
    fi

    stop_process slurmd "$slurmd_pid"
    stop_process slurmctld "$slurmctld_pid"
    stop_process munged "$munged_pid"

    # A failed check prints its own reason; the daemon logs help when the script aborted.
    if [ "$status" -ne 0 ] && [ "$checks_finished" -eq 0 ] && [ -d "$workdir/log" ]; then
        for file in slurmctld.log slurmd.log; do
            if [ -s "$workdir/log/$file" ]; then
                echo "--- last lines of $file" >&2
                tail -n 15 "$workdir/log/$file" >&2
            fi
        done
    fi
    if [ "$keep_workdir" -eq 1 ]; then
        log "kept $workdir (slurm.conf in etc/, daemon logs in log/, job output in jobs/)"
    elif [ -n "$workdir" ]; then
        rm -rf "$workdir"
    fi
    exit "$status"
}

# Prints one field of `scontrol show job`, for example JobState or ExitCode.
job_field() {
    local job_id=$1 field=$2
    scontrol show job -o "$job_id" | tr ' ' '\n' | sed -n "s/^$field=//p" | head -n 1
}

job_has_ended() {
    case "$(job_field "$1" JobState)" in
        COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) return 0 ;;
        *) return 1 ;;
    esac
}

job_is_running() {
    [ "$(job_field "$1" JobState)" = "RUNNING" ]
}

# Waits for a job to end and prints "STATE EXITCODE", for example "COMPLETED 0:0", or
# "NOT_ENDED" after `timeout` seconds. sacct needs slurmdbd and a database, so the state
# comes from slurmctld's memory, which keeps finished jobs for MinJobAge seconds.
wait_for_job() {
    local job_id=$1 timeout=$2
    if wait_until "$timeout" "job $job_id to end" job_has_ended "$job_id"; then
        echo "$(job_field "$job_id" JobState) $(job_field "$job_id" ExitCode)"
    else
        echo "NOT_ENDED"
    fi
}

# Prints PASS or FAIL and a description; returns 1 on FAIL so callers can count.
check() {
    local description=$1
    shift
    if "$@"; then
        echo "    PASS $description"
    else
        echo "    FAIL $description"
        return 1
    fi
}
