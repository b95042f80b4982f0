#ifndef CSPSHIM_H
#define CSPSHIM_H

/*
 * A C interface to the sentencepiece C++ library (libsentencepiece, libsentencepiece_train),
 * so that Swift can use it without C++ interoperability.
 *
 * Functions that can fail return 0 on success and -1 on failure, with a NUL-terminated
 * message in err (when errlen > 0). Encoding and decoding with one processor may run on
 * several threads at once: sentencepiece's Encode and Decode are const.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cspshim_processor cspshim_processor;

/* Loads a .model file (a serialized ModelProto). Returns NULL with a message on failure. */
cspshim_processor *cspshim_load(const char *path, char *err, size_t errlen);

/* Loads a model from the bytes of a .model file. */
cspshim_processor *cspshim_load_from_bytes(const void *data, size_t size, char *err, size_t errlen);

void cspshim_free(cspshim_processor *processor);

/* Number of pieces (the vocabulary size). */
int32_t cspshim_piece_count(const cspshim_processor *processor);

/* Returns the id of a piece, or -1 when the model has no such piece. (sentencepiece itself
 * returns the unknown id, which is indistinguishable from a real "<unk>" lookup.) */
int32_t cspshim_piece_to_id(const cspshim_processor *processor, const char *piece, size_t length);

/* Copies the piece with `id` into buffer (NUL-terminated, truncated to capacity) and returns
 * its full length in bytes, or -1 when the id is out of range. */
int32_t cspshim_id_to_piece(const cspshim_processor *processor, int32_t id, char *buffer, size_t capacity);

/* Piece kinds from the model proto: 1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte; 0 when the id is out of range. */
int32_t cspshim_piece_type(const cspshim_processor *processor, int32_t id);

/* Special ids, -1 when the model defines none. */
int32_t cspshim_bos_id(const cspshim_processor *processor);
int32_t cspshim_eos_id(const cspshim_processor *processor);
int32_t cspshim_pad_id(const cspshim_processor *processor);
int32_t cspshim_unk_id(const cspshim_processor *processor);

/* Settings stored in the model proto, for diagnostics: model type (1 unigram, 2 BPE, 3 word,
 * 4 char), byte fallback and the dummy "▁" prefix. */
int32_t cspshim_model_type(const cspshim_processor *processor);
int32_t cspshim_byte_fallback(const cspshim_processor *processor);
int32_t cspshim_add_dummy_prefix(const cspshim_processor *processor);

/* Encodes UTF-8 text (without BOS/EOS). On success *ids is a malloc'ed array of *count ids
 * that the caller releases with cspshim_free_ids. */
int cspshim_encode(const cspshim_processor *processor, const char *text, size_t length, int32_t **ids,
                   size_t *count, char *err, size_t errlen);

void cspshim_free_ids(int32_t *ids);

/* Decodes ids to UTF-8 text. On success *text is a malloc'ed buffer of *length bytes (plus a
 * NUL) that the caller releases with cspshim_free_text. */
int cspshim_decode(const cspshim_processor *processor, const int32_t *ids, size_t count, char **text,
                   size_t *length, char *err, size_t errlen);

void cspshim_free_text(char *text);

/* Trains a model with SentencePieceTrainer::Train and an spm_train-style options string,
 * for example "--input=corpus.txt --model_prefix=out --vocab_size=1000".
 * min_log_level sets sentencepiece's logging threshold for the call (0 info, 1 warning,
 * 2 error); -1 leaves it unchanged. The option --minloglevel takes effect only after
 * sentencepiece has logged the whole command line. */
int cspshim_train(const char *options, int min_log_level, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
