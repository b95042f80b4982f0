// The extern "C" surface of cspshim.h over sentencepiece::SentencePieceProcessor and
// sentencepiece::SentencePieceTrainer. No C++ exception crosses into Swift.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "cspshim.h"
#include "model_proto.h"

// Exported by libsentencepiece but declared only in its private common.h.
namespace sentencepiece {
namespace logging {
int GetMinLogLevel();
void SetMinLogLevel(int v);
}  // namespace logging
}  // namespace sentencepiece

struct cspshim_processor {
    sentencepiece::SentencePieceProcessor processor;
    // Read from the serialized ModelProto (see model_proto.cpp), because Debian's
    // libsentencepiece-dev ships no sentencepiece_model.pb.h.
    cspshim_model_settings settings;
};

namespace {

void set_error(char *err, size_t errlen, const std::string &message) {
    if (err == nullptr || errlen == 0) return;
    std::snprintf(err, errlen, "%s", message.c_str());
}

cspshim_processor *finish_load(std::unique_ptr<cspshim_processor> holder, const sentencepiece::util::Status &status,
                               char *err, size_t errlen) {
    if (!status.ok()) {
        set_error(err, errlen, status.ToString());
        return nullptr;
    }
    if (holder->processor.GetPieceSize() <= 0) {
        set_error(err, errlen, "the model has no pieces");
        return nullptr;
    }
    std::string parse_error;
    if (!cspshim_parse_model_proto(holder->processor.serialized_model_proto(), &holder->settings, &parse_error)) {
        set_error(err, errlen, "the model proto could not be read: " + parse_error);
        return nullptr;
    }
    if (static_cast<int>(holder->settings.piece_types.size()) != holder->processor.GetPieceSize()) {
        set_error(err, errlen, "the model proto lists " + std::to_string(holder->settings.piece_types.size()) +
                                   " pieces but sentencepiece reports " +
                                   std::to_string(holder->processor.GetPieceSize()));
        return nullptr;
    }
    return holder.release();
}

}  // namespace

extern "C" cspshim_processor *cspshim_load(const char *path, char *err, size_t errlen) {
    if (path == nullptr) {
        set_error(err, errlen, "null path");
        return nullptr;
    }
    try {
        auto holder = std::make_unique<cspshim_processor>();
        auto status = holder->processor.Load(path);
        return finish_load(std::move(holder), status, err, errlen);
    } catch (const std::exception &error) {
        set_error(err, errlen, error.what());
        return nullptr;
    }
}

extern "C" cspshim_processor *cspshim_load_from_bytes(const void *data, size_t size, char *err, size_t errlen) {
    if (data == nullptr && size > 0) {
        set_error(err, errlen, "null data");
        return nullptr;
    }
    try {
        auto holder = std::make_unique<cspshim_processor>();
        std::string serialized(static_cast<const char *>(data), size);
        auto status = holder->processor.LoadFromSerializedProto(serialized);
        return finish_load(std::move(holder), status, err, errlen);
    } catch (const std::exception &error) {
        set_error(err, errlen, error.what());
        return nullptr;
    }
}

extern "C" void cspshim_free(cspshim_processor *processor) { delete processor; }

extern "C" int32_t cspshim_piece_count(const cspshim_processor *processor) {
    return processor->processor.GetPieceSize();
}

extern "C" int32_t cspshim_piece_to_id(const cspshim_processor *processor, const char *piece, size_t length) {
    const auto &sp = processor->processor;
    std::string key(piece, length);
    int id = sp.PieceToId(key);
    // PieceToId returns the unknown id for a piece it does not know; tell that apart from
    // a lookup of the unknown piece itself.
    if (id < 0 || id >= sp.GetPieceSize() || sp.IdToPiece(id) != key) return -1;
    return id;
}

extern "C" int32_t cspshim_id_to_piece(const cspshim_processor *processor, int32_t id, char *buffer,
                                       size_t capacity) {
    const auto &sp = processor->processor;
    if (id < 0 || id >= sp.GetPieceSize()) return -1;
    const std::string &piece = sp.IdToPiece(id);
    if (buffer != nullptr && capacity > 0) {
        size_t copied = piece.size() < capacity - 1 ? piece.size() : capacity - 1;
        std::memcpy(buffer, piece.data(), copied);
        buffer[copied] = '\0';
    }
    return static_cast<int32_t>(piece.size());
}

extern "C" int32_t cspshim_piece_type(const cspshim_processor *processor, int32_t id) {
    const auto &types = processor->settings.piece_types;
    if (id < 0 || static_cast<size_t>(id) >= types.size()) return 0;
    return types[static_cast<size_t>(id)];
}

extern "C" int32_t cspshim_bos_id(const cspshim_processor *processor) { return processor->processor.bos_id(); }
extern "C" int32_t cspshim_eos_id(const cspshim_processor *processor) { return processor->processor.eos_id(); }
extern "C" int32_t cspshim_pad_id(const cspshim_processor *processor) { return processor->processor.pad_id(); }
extern "C" int32_t cspshim_unk_id(const cspshim_processor *processor) { return processor->processor.unk_id(); }

extern "C" int32_t cspshim_model_type(const cspshim_processor *processor) {
    return processor->settings.model_type;
}

extern "C" int32_t cspshim_byte_fallback(const cspshim_processor *processor) {
    return processor->settings.byte_fallback ? 1 : 0;
}

extern "C" int32_t cspshim_add_dummy_prefix(const cspshim_processor *processor) {
    return processor->settings.add_dummy_prefix ? 1 : 0;
}

extern "C" int cspshim_encode(const cspshim_processor *processor, const char *text, size_t length, int32_t **ids,
                              size_t *count, char *err, size_t errlen) {
    *ids = nullptr;
    *count = 0;
    try {
        std::vector<int> result;
        auto status = processor->processor.Encode(std::string(text, length), &result);
        if (!status.ok()) {
            set_error(err, errlen, status.ToString());
            return -1;
        }
        auto *buffer = static_cast<int32_t *>(std::malloc(sizeof(int32_t) * (result.size() + 1)));
        if (buffer == nullptr) {
            set_error(err, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < result.size(); i++) buffer[i] = result[i];
        *ids = buffer;
        *count = result.size();
        return 0;
    } catch (const std::exception &error) {
        set_error(err, errlen, error.what());
        return -1;
    }
}

extern "C" void cspshim_free_ids(int32_t *ids) { std::free(ids); }

extern "C" int cspshim_decode(const cspshim_processor *processor, const int32_t *ids, size_t count, char **text,
                              size_t *length, char *err, size_t errlen) {
    *text = nullptr;
    *length = 0;
    try {
        const int pieces = processor->processor.GetPieceSize();
        std::vector<int> input(count);
        for (size_t i = 0; i < count; i++) {
            if (ids[i] < 0 || ids[i] >= pieces) {
                set_error(err, errlen, "id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                           " is outside the vocabulary (0..<" + std::to_string(pieces) + ")");
                return -1;
            }
            input[i] = ids[i];
        }
        std::string result;
        auto status = processor->processor.Decode(input, &result);
        if (!status.ok()) {
            set_error(err, errlen, status.ToString());
            return -1;
        }
        auto *buffer = static_cast<char *>(std::malloc(result.size() + 1));
        if (buffer == nullptr) {
            set_error(err, errlen, "out of memory");
            return -1;
        }
        std::memcpy(buffer, result.data(), result.size());
        buffer[result.size()] = '\0';
        *text = buffer;
        *length = result.size();
        return 0;
    } catch (const std::exception &error) {
        set_error(err, errlen, error.what());
        return -1;
    }
}

extern "C" void cspshim_free_text(char *text) { std::free(text); }

extern "C" int cspshim_train(const char *options, int min_log_level, char *err, size_t errlen) {
    if (options == nullptr) {
        set_error(err, errlen, "null options");
        return -1;
    }
    const int previous_level = sentencepiece::logging::GetMinLogLevel();
    try {
        if (min_log_level >= 0) sentencepiece::logging::SetMinLogLevel(min_log_level);
        auto status = sentencepiece::SentencePieceTrainer::Train(options);
        sentencepiece::logging::SetMinLogLevel(previous_level);
        if (!status.ok()) {
            set_error(err, errlen, status.ToString());
            return -1;
        }
        return 0;
    } catch (const std::exception &error) {
        sentencepiece::logging::SetMinLogLevel(previous_level);
        set_error(err, errlen, error.what());
        return -1;
    }
}
