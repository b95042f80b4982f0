#include "cimageencode.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/*
 * Everything that libjpeg touches lives in one heap block. After a longjmp the
 * values of automatic variables changed since setjmp are indeterminate (C11
 * 7.13.2.1), but heap memory reached through an unchanged pointer is not.
 */
struct encode_state {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr error_manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    unsigned char *buffer; /* owned by jpeg_mem_dest until jpeg_finish_compress */
    unsigned long buffer_size;
};

static void encode_error_exit(j_common_ptr cinfo) {
    struct encode_state *state = (struct encode_state *)cinfo->client_data;
    (*cinfo->err->format_message)(cinfo, state->message);
    longjmp(state->jump, 1);
}

/* Drops libjpeg warnings. Compression reads no corrupt data, so they would only add noise on stderr. */
static void encode_emit_message(j_common_ptr cinfo, int msg_level) {
    (void)cinfo;
    (void)msg_level;
}

static void write_message(char *message, size_t message_size, const char *text) {
    if (message != NULL && message_size > 0) {
        snprintf(message, message_size, "%s", text);
    }
}

int cimage_encode_jpeg_rgb8(const uint8_t *pixels, int width, int height, int quality,
                            uint8_t **out, size_t *out_size,
                            char *message, size_t message_size) {
    if (out != NULL) *out = NULL;
    if (out_size != NULL) *out_size = 0;

    if (pixels == NULL || out == NULL || out_size == NULL) {
        write_message(message, message_size, "null pointer passed to the JPEG encoder");
        return CIMAGE_ENCODE_INVALID_ARGUMENT;
    }
    if (width < 1 || height < 1 || width > 65500 || height > 65500) {
        char text[128];
        snprintf(text, sizeof text, "image size %dx%d is outside the JPEG range 1...65500", width, height);
        write_message(message, message_size, text);
        return CIMAGE_ENCODE_INVALID_ARGUMENT;
    }
    if (quality < 1 || quality > 100) {
        char text[128];
        snprintf(text, sizeof text, "JPEG quality %d is outside 1...100", quality);
        write_message(message, message_size, text);
        return CIMAGE_ENCODE_INVALID_ARGUMENT;
    }

    struct encode_state *state = calloc(1, sizeof *state);
    if (state == NULL) {
        write_message(message, message_size, "out of memory allocating the JPEG encoder");
        return CIMAGE_ENCODE_OUT_OF_MEMORY;
    }

    state->cinfo.err = jpeg_std_error(&state->error_manager);
    state->error_manager.error_exit = encode_error_exit;
    state->error_manager.emit_message = encode_emit_message;
    state->cinfo.client_data = state;

    if (setjmp(state->jump) != 0) {
        /* libjpeg failed somewhere below; release what it holds and report. */
        write_message(message, message_size, state->message);
        jpeg_destroy_compress(&state->cinfo);
        free(state->buffer);
        free(state);
        return CIMAGE_ENCODE_LIBJPEG_ERROR;
    }

    jpeg_create_compress(&state->cinfo);
    jpeg_mem_dest(&state->cinfo, &state->buffer, &state->buffer_size);

    state->cinfo.image_width = (JDIMENSION)width;
    state->cinfo.image_height = (JDIMENSION)height;
    state->cinfo.input_components = 3;
    state->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&state->cinfo);
    jpeg_set_quality(&state->cinfo, quality, TRUE);

    jpeg_start_compress(&state->cinfo, TRUE);
    const size_t row_stride = (size_t)width * 3;
    while (state->cinfo.next_scanline < state->cinfo.image_height) {
        /* libjpeg's API takes non-const rows but only reads them. */
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)state->cinfo.next_scanline * row_stride);
        jpeg_write_scanlines(&state->cinfo, &row, 1);
    }
    jpeg_finish_compress(&state->cinfo);
    jpeg_destroy_compress(&state->cinfo);

    *out = state->buffer;
    *out_size = (size_t)state->buffer_size;
    free(state);
    return CIMAGE_ENCODE_OK;
}

void cimage_free_encoded(uint8_t *buffer) {
    free(buffer);
}
