// A minimal protobuf wire-format reader for sentencepiece's ModelProto.
//
// Field numbers, from sentencepiece_model.proto:
//   ModelProto:      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece:   1 piece, 2 score, 3 type
//   TrainerSpec:     3 model_type, 35 byte_fallback
//   NormalizerSpec:  3 add_dummy_prefix

#include "model_proto.h"

namespace {

struct Reader {
    const uint8_t *position;
    const uint8_t *end;
    std::string *error;

    bool fail(const std::string &message) {
        if (error->empty()) *error = message;
        return false;
    }

    bool varint(uint64_t *value) {
        uint64_t result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (position >= end) return fail("truncated varint");
            uint8_t byte = *position++;
            result |= static_cast<uint64_t>(byte & 0x7F) << shift;
            if ((byte & 0x80) == 0) {
                *value = result;
                return true;
            }
        }
        return fail("varint longer than 10 bytes");
    }

    // Reads one field key, then hands back either its varint value or its length-delimited body.
    bool field(uint32_t *number, uint32_t *wire_type, uint64_t *value, Reader *body) {
        uint64_t key = 0;
        if (!varint(&key)) return false;
        *number = static_cast<uint32_t>(key >> 3);
        *wire_type = static_cast<uint32_t>(key & 7);
        switch (*wire_type) {
        case 0:
            return varint(value);
        case 1:
            if (end - position < 8) return fail("truncated 64-bit field");
            position += 8;
            return true;
        case 5:
            if (end - position < 4) return fail("truncated 32-bit field");
            position += 4;
            return true;
        case 2: {
            uint64_t length = 0;
            if (!varint(&length)) return false;
            if (length > static_cast<uint64_t>(end - position)) return fail("length-delimited field runs past the end");
            *body = Reader{position, position + length, error};
            position += length;
            return true;
        }
        default:
            return fail("unsupported wire type " + std::to_string(*wire_type));
        }
    }
};

bool parse_piece(Reader reader, int32_t *type) {
    *type = 1;
    while (reader.position < reader.end) {
        uint32_t number = 0, wire_type = 0;
        uint64_t value = 0;
        Reader body{nullptr, nullptr, reader.error};
        if (!reader.field(&number, &wire_type, &value, &body)) return false;
        if (number == 3 && wire_type == 0) *type = static_cast<int32_t>(value);
    }
    return true;
}

bool parse_trainer_spec(Reader reader, cspshim_model_settings *settings) {
    while (reader.position < reader.end) {
        uint32_t number = 0, wire_type = 0;
        uint64_t value = 0;
        Reader body{nullptr, nullptr, reader.error};
        if (!reader.field(&number, &wire_type, &value, &body)) return false;
        if (number == 3 && wire_type == 0) settings->model_type = static_cast<int32_t>(value);
        if (number == 35 && wire_type == 0) settings->byte_fallback = value != 0;
    }
    return true;
}

bool parse_normalizer_spec(Reader reader, cspshim_model_settings *settings) {
    while (reader.position < reader.end) {
        uint32_t number = 0, wire_type = 0;
        uint64_t value = 0;
        Reader body{nullptr, nullptr, reader.error};
        if (!reader.field(&number, &wire_type, &value, &body)) return false;
        if (number == 3 && wire_type == 0) settings->add_dummy_prefix = value != 0;
    }
    return true;
}

}  // namespace

bool cspshim_parse_model_proto(const std::string &bytes, cspshim_model_settings *settings, std::string *error) {
    const auto *data = reinterpret_cast<const uint8_t *>(bytes.data());
    Reader reader{data, data + bytes.size(), error};
    *settings = cspshim_model_settings();
    while (reader.position < reader.end) {
        uint32_t number = 0, wire_type = 0;
        uint64_t value = 0;
        Reader body{nullptr, nullptr, error};
        if (!reader.field(&number, &wire_type, &value, &body)) return false;
        if (wire_type != 2) continue;
        if (number == 1) {
            int32_t type = 1;
            if (!parse_piece(body, &type)) return false;
            settings->piece_types.push_back(type);
        } else if (number == 2) {
            if (!parse_trainer_spec(body, settings)) return false;
        } else if (number == 3) {
            if (!parse_normalizer_spec(body, settings)) return false;
        }
    }
    return true;
}
