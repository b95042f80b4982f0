/* JPEG decoding through libjpeg(-turbo) with setjmp error handling. */

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "internal.h"

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *err;
    size_t errlen;
    int warning_count;
} shim_error_mgr;

/* libjpeg calls this for fatal errors; the default would print and exit(). */
static void on_error_exit(j_common_ptr cinfo) {
    shim_error_mgr *mgr = (shim_error_mgr *)cinfo->err;
    char message[JMSG_LENGTH_MAX];
    mgr->base.format_message(cinfo, message);
    cimg_set_error(mgr->err, mgr->errlen, "%s", message);
    longjmp(mgr->jump, 1);
}

/*
 * Warnings (level -1) and trace messages (level >= 0). Running out of data is only a warning
 * in libjpeg, which then fills the missing rows with gray. A training pipeline must not learn
 * from such an image, so those two warnings become errors. Nothing is printed.
 */
static void on_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    shim_error_mgr *mgr = (shim_error_mgr *)cinfo->err;
    mgr->base.num_warnings++;
    mgr->warning_count++;

    char message[JMSG_LENGTH_MAX];
    mgr->base.format_message(cinfo, message);
    int code = mgr->base.msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) {
        cimg_set_error(mgr->err, mgr->errlen, "truncated JPEG data (%s)", message);
        longjmp(mgr->jump, 1);
    }
    cimg_set_error(mgr->err, mgr->errlen, "warning: %s", message);
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void install_error_manager(struct jpeg_decompress_struct *cinfo, shim_error_mgr *mgr, char *err,
                                  size_t errlen) {
    memset(mgr, 0, sizeof(*mgr));
    cinfo->err = jpeg_std_error(&mgr->base);
    mgr->base.error_exit = on_error_exit;
    mgr->base.emit_message = on_emit_message;
    mgr->base.output_message = on_output_message;
    mgr->err = err;
    mgr->errlen = errlen;
}

/* Fills info from a decompressor whose header has been read with APP1 markers saved. */
static void fill_info(struct jpeg_decompress_struct *cinfo, cimg_info *info) {
    memset(info, 0, sizeof(*info));
    info->format = CIMG_FORMAT_JPEG;
    info->width = cinfo->image_width;
    info->height = cinfo->image_height;
    info->components = cinfo->num_components;
    info->bit_depth = cinfo->data_precision;
    info->is_grayscale = cinfo->jpeg_color_space == JCS_GRAYSCALE;
    info->is_cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    info->is_progressive = cinfo->progressive_mode ? 1 : 0;
    info->orientation = 1;

    for (jpeg_saved_marker_ptr marker = cinfo->marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker != JPEG_APP0 + 1 || marker->data_length < 6) continue;
        if (memcmp(marker->data, "Exif\0\0", 6) != 0) continue;
        info->orientation = cimg_exif_orientation(marker->data + 6, marker->data_length - 6);
        break;
    }
}

int cimg_jpeg_read_info(const uint8_t *data, size_t size, cimg_info *info, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    shim_error_mgr mgr;
    install_error_manager(&cinfo, &mgr, err, errlen);
    if (setjmp(mgr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return CIMG_ERR_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    fill_info(&cinfo, info);
    jpeg_destroy_decompress(&cinfo);
    return CIMG_OK;
}

/*
 * CMYK to RGB as Pillow converts it: R = (255 - K) - C * (255 - K) / 255, with Pillow's
 * rounded division by 255. Adobe writers store CMYK inverted (the Adobe APP14 marker), so the
 * samples are inverted back first.
 */
static inline uint8_t mul_div_255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_row_to_rgb(const JSAMPLE *cmyk, uint8_t *rgb, JDIMENSION width, int inverted) {
    for (JDIMENSION x = 0; x < width; x++) {
        int c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
        if (inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        int nk = 255 - k;
        rgb[3 * x] = (uint8_t)(nk - mul_div_255(c, nk));
        rgb[3 * x + 1] = (uint8_t)(nk - mul_div_255(m, nk));
        rgb[3 * x + 2] = (uint8_t)(nk - mul_div_255(y, nk));
    }
}

int cimg_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, int scale_denom,
                     cimg_image *out, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    shim_error_mgr mgr;
    /* Written after setjmp and read after longjmp, so they must be volatile. */
    uint8_t *volatile pixels = NULL;
    JSAMPLE *volatile cmyk_row = NULL;

    install_error_manager(&cinfo, &mgr, err, errlen);
    if (setjmp(mgr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(cmyk_row);
        return CIMG_ERR_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    fill_info(&cinfo, &out->info);

    /* 1. Check the size from the header, before libjpeg or we allocate anything large. */
    uint64_t pixel_count = (uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height;
    if (max_pixels > 0 && pixel_count > max_pixels) {
        cimg_set_error(err, errlen, "image is %ux%u = %llu pixels, above the limit of %llu pixels",
                       cinfo.image_width, cinfo.image_height, (unsigned long long)pixel_count,
                       (unsigned long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return CIMG_ERR_TOO_LARGE;
    }
    if (cinfo.data_precision != 8) {
        cimg_set_error(err, errlen, "%d-bit JPEG is not supported (only 8-bit)", cinfo.data_precision);
        jpeg_destroy_decompress(&cinfo);
        return CIMG_ERR_CORRUPT;
    }

    /* 2. Choose the output: RGB from gray or YCbCr (libjpeg-turbo converts), raw CMYK otherwise. */
    int is_cmyk = out->info.is_cmyk;
    cinfo.out_color_space = is_cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)scale_denom;
    jpeg_start_decompress(&cinfo);

    JDIMENSION width = cinfo.output_width;
    JDIMENSION height = cinfo.output_height;
    size_t row_bytes = (size_t)width * 3;
    pixels = malloc(row_bytes * (size_t)height + 1);
    if (is_cmyk) cmyk_row = malloc((size_t)width * 4 + 1);
    if (pixels == NULL || (is_cmyk && cmyk_row == NULL)) {
        cimg_set_error(err, errlen, "out of memory for a %ux%u image", width, height);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(cmyk_row);
        return CIMG_ERR_MEMORY;
    }

    /* 3. Decode row by row. */
    while (cinfo.output_scanline < height) {
        JDIMENSION y = cinfo.output_scanline;
        if (is_cmyk) {
            JSAMPROW rows[1] = {cmyk_row};
            jpeg_read_scanlines(&cinfo, rows, 1);
            cmyk_row_to_rgb(cmyk_row, pixels + (size_t)y * row_bytes, width, cinfo.saw_Adobe_marker);
        } else {
            JSAMPROW rows[1] = {pixels + (size_t)y * row_bytes};
            jpeg_read_scanlines(&cinfo, rows, 1);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(cmyk_row);

    out->width = width;
    out->height = height;
    out->bytes_per_sample = 1;
    out->pixels = pixels;
    out->warning_count = mgr.warning_count;
    return CIMG_OK;
}
