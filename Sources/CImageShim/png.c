/* PNG decoding through libpng with setjmp error handling. */

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "internal.h"

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
} memory_reader;

typedef struct {
    jmp_buf jump;
    char *err;
    size_t errlen;
    int warning_count;
} error_context;

static void read_from_memory(png_structp png, png_bytep destination, size_t length) {
    memory_reader *reader = (memory_reader *)png_get_io_ptr(png);
    if (length > reader->size - reader->offset) {
        png_error(png, "unexpected end of PNG data (the file is truncated)");
    }
    memcpy(destination, reader->data + reader->offset, length);
    reader->offset += length;
}

/* libpng must not return from its error callback; the default one prints and longjmps. */
static void on_error(png_structp png, png_const_charp message) {
    error_context *context = (error_context *)png_get_error_ptr(png);
    cimg_set_error(context->err, context->errlen, "%s", message);
    longjmp(context->jump, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    error_context *context = (error_context *)png_get_error_ptr(png);
    context->warning_count++;
    cimg_set_error(context->err, context->errlen, "warning: %s", message);
}

static void fill_info(png_structp png, png_infop info_ptr, cimg_info *info) {
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info_ptr, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);

    memset(info, 0, sizeof(*info));
    info->format = CIMG_FORMAT_PNG;
    info->width = width;
    info->height = height;
    info->components = png_get_channels(png, info_ptr);
    info->bit_depth = bit_depth;
    info->is_grayscale = (color_type & PNG_COLOR_MASK_COLOR) == 0;
    info->is_palette = color_type == PNG_COLOR_TYPE_PALETTE;
    info->has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, info_ptr, PNG_INFO_tRNS) != 0;
    info->is_progressive = interlace != PNG_INTERLACE_NONE;
    info->orientation = 1;

    /* The eXIf chunk (PNG 1.5 extension) holds a TIFF block, as JPEG's APP1 does after "Exif\0\0". */
    png_bytep exif = NULL;
    png_uint_32 exif_size = 0;
    if (png_get_eXIf_1(png, info_ptr, &exif_size, &exif) != 0 && exif != NULL) {
        info->orientation = cimg_exif_orientation(exif, exif_size);
    }
}

static int is_little_endian(void) {
    uint16_t one = 1;
    return *(uint8_t *)&one == 1;
}

/* Shared by read_info and decode: create the reader and read up to the first IDAT. */
#define PNG_BEGIN(png, info_ptr, context, reader)                                              \
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, on_error, on_warning);      \
    if (png == NULL) {                                                                         \
        cimg_set_error(err, errlen, "out of memory creating the PNG reader");                 \
        return CIMG_ERR_MEMORY;                                                                \
    }                                                                                          \
    info_ptr = png_create_info_struct(png);                                                    \
    if (info_ptr == NULL) {                                                                    \
        png_destroy_read_struct(&png, NULL, NULL);                                             \
        cimg_set_error(err, errlen, "out of memory creating the PNG reader");                 \
        return CIMG_ERR_MEMORY;                                                                \
    }                                                                                          \
    png_set_read_fn(png, &reader, read_from_memory)

int cimg_png_read_info(const uint8_t *data, size_t size, cimg_info *info, char *err, size_t errlen) {
    memory_reader reader = {data, size, 0};
    error_context context = {.err = err, .errlen = errlen, .warning_count = 0};
    png_structp png;
    png_infop info_ptr;
    PNG_BEGIN(png, info_ptr, context, reader);

    if (setjmp(context.jump)) {
        png_destroy_read_struct(&png, &info_ptr, NULL);
        return CIMG_ERR_CORRUPT;
    }
    png_read_info(png, info_ptr);
    fill_info(png, info_ptr, info);
    png_destroy_read_struct(&png, &info_ptr, NULL);
    return CIMG_OK;
}

int cimg_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cimg_image *out, char *err,
                    size_t errlen) {
    memory_reader reader = {data, size, 0};
    error_context context = {.err = err, .errlen = errlen, .warning_count = 0};
    png_structp png;
    png_infop info_ptr;
    /* Written after setjmp and read after longjmp, so they must be volatile. */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    PNG_BEGIN(png, info_ptr, context, reader);

    if (setjmp(context.jump)) {
        png_destroy_read_struct(&png, &info_ptr, NULL);
        free(pixels);
        free(rows);
        return CIMG_ERR_CORRUPT;
    }
    png_read_info(png, info_ptr);
    fill_info(png, info_ptr, &out->info);
    cimg_info *info = &out->info;

    /* 1. Check the size from the header, before anything large is allocated. */
    uint64_t pixel_count = (uint64_t)info->width * (uint64_t)info->height;
    if (max_pixels > 0 && pixel_count > max_pixels) {
        cimg_set_error(err, errlen, "image is %ux%u = %llu pixels, above the limit of %llu pixels", info->width,
                       info->height, (unsigned long long)pixel_count, (unsigned long long)max_pixels);
        png_destroy_read_struct(&png, &info_ptr, NULL);
        return CIMG_ERR_TOO_LARGE;
    }

    /* 2. Ask libpng for RGB: expand palettes and low-bit gray, drop alpha, keep 16 bits. */
    if (info->is_palette) png_set_palette_to_rgb(png);
    if (info->is_grayscale && info->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (info->is_grayscale) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    if (info->bit_depth == 16 && is_little_endian()) png_set_swap(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info_ptr);

    int bytes_per_sample = png_get_bit_depth(png, info_ptr) == 16 ? 2 : 1;
    size_t row_bytes = (size_t)info->width * 3 * (size_t)bytes_per_sample;
    if (png_get_channels(png, info_ptr) != 3 || png_get_rowbytes(png, info_ptr) != row_bytes) {
        cimg_set_error(err, errlen, "internal error: libpng produced %d channels and %zu bytes per row, expected 3 and %zu",
                       (int)png_get_channels(png, info_ptr), (size_t)png_get_rowbytes(png, info_ptr), row_bytes);
        png_destroy_read_struct(&png, &info_ptr, NULL);
        return CIMG_ERR_CORRUPT;
    }

    /* 3. Decode all rows at once (interlaced images need the whole buffer). */
    pixels = malloc(row_bytes * (size_t)info->height + 1);
    rows = malloc(sizeof(png_bytep) * (size_t)info->height + 1);
    if (pixels == NULL || rows == NULL) {
        cimg_set_error(err, errlen, "out of memory for a %ux%u image", info->width, info->height);
        png_destroy_read_struct(&png, &info_ptr, NULL);
        free(pixels);
        free(rows);
        return CIMG_ERR_MEMORY;
    }
    for (uint32_t y = 0; y < info->height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info_ptr, NULL);
    free(rows);

    out->width = info->width;
    out->height = info->height;
    out->bytes_per_sample = bytes_per_sample;
    out->pixels = pixels;
    out->warning_count = context.warning_count;
    return CIMG_OK;
}
