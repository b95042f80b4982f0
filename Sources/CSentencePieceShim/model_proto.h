#ifndef CSPSHIM_MODEL_PROTO_H
#define CSPSHIM_MODEL_PROTO_H

#include <cstdint>
#include <string>
#include <vector>

// The few ModelProto fields palitrain reports, with the proto's defaults.
struct cspshim_model_settings {
    std::vector<int32_t> piece_types;  // SentencePiece.Type per id (NORMAL = 1 when absent)
    int32_t model_type = 1;            // TrainerSpec.model_type (UNIGRAM = 1)
    bool byte_fallback = false;        // TrainerSpec.byte_fallback
    bool add_dummy_prefix = true;      // NormalizerSpec.add_dummy_prefix
};

// Reads the fields above from a serialized ModelProto with a minimal protobuf wire-format
// walker. Returns false with a message when the bytes are not valid wire format.
bool cspshim_parse_model_proto(const std::string &bytes, cspshim_model_settings *settings, std::string *error);

#endif
