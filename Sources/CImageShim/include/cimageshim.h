#ifndef CIMAGESHIM_H
#define CIMAGESHIM_H

/*
 * Image decoding for palitrain: JPEG through libjpeg(-turbo), PNG through libpng.
 *
 * Both libraries report fatal errors through a callback that must not return. The shim catches
 * them with setjmp/longjmp and returns an error code plus a message, so a corrupt file never
 * ends the process. Nothing is printed: library warnings are collected in the message buffer.
 *
 * Every decoded image is 3-channel RGB, interleaved, row-major [height, width, 3]:
 * grayscale is expanded to three equal channels, alpha is dropped, palettes are expanded,
 * CMYK is converted to RGB. Samples are 8-bit, or 16-bit (native byte order) for 16-bit PNGs.
 * The EXIF orientation is reported, not applied.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CIMG_OK = 0,
    /* The bytes are neither JPEG nor PNG. */
    CIMG_ERR_FORMAT = 1,
    /* The decoder rejected the data (truncated, corrupt, unsupported). */
    CIMG_ERR_CORRUPT = 2,
    /* width * height from the header exceeds the caller's pixel limit. */
    CIMG_ERR_TOO_LARGE = 3,
    /* A pixel buffer could not be allocated. */
    CIMG_ERR_MEMORY = 4,
    /* A bad argument (null pointer, zero-sized buffer, invalid scale). */
    CIMG_ERR_ARGUMENT = 5,
};

enum {
    CIMG_FORMAT_UNKNOWN = 0,
    CIMG_FORMAT_JPEG = 1,
    CIMG_FORMAT_PNG = 2,
};

/* The properties the file header declares, read before any pixel is decoded. */
typedef struct {
    int format;            /* CIMG_FORMAT_* */
    uint32_t width;        /* as stored, before the EXIF orientation */
    uint32_t height;
    int components;        /* stored channels: 1 gray, 2 gray+alpha, 3 color, 4 RGBA or CMYK */
    int bit_depth;         /* bits per stored sample: 8 for JPEG; 1, 2, 4, 8 or 16 for PNG */
    int is_grayscale;
    int has_alpha;         /* an alpha channel or a PNG tRNS chunk */
    int is_palette;
    int is_cmyk;           /* JPEG stored as CMYK or YCCK */
    int is_progressive;    /* progressive JPEG or interlaced PNG */
    int orientation;       /* EXIF orientation 1..8; 1 when absent or invalid */
} cimg_info;

/* A decoded image. Release the pixels with cimg_free. */
typedef struct {
    cimg_info info;
    uint32_t width;        /* decoded size: the stored size, divided when DCT scaling was used */
    uint32_t height;
    int bytes_per_sample;  /* 1 or 2 */
    void *pixels;          /* [height, width, 3] samples, malloc'ed */
    int warning_count;     /* recoverable decoder warnings; the last one is in the message buffer */
} cimg_image;

/* Returns CIMG_FORMAT_* from the first bytes. */
int cimg_detect_format(const uint8_t *data, size_t size);

/*
 * Reads the header of a JPEG or PNG held in memory. Returns CIMG_OK or an error code, with a
 * message in err (always NUL-terminated when errlen > 0).
 */
int cimg_read_info(const uint8_t *data, size_t size, cimg_info *info, char *err, size_t errlen);

/*
 * Decodes a JPEG or PNG held in memory into RGB.
 *
 * max_pixels: the image is rejected with CIMG_ERR_TOO_LARGE when width * height from the
 * header exceeds it, before any pixel buffer is allocated. 0 means no limit.
 * jpeg_scale_denom: 1, 2, 4 or 8. JPEGs are decoded at 1/denom of their size with libjpeg's
 * DCT scaling (ceil(size / denom)); PNGs ignore it.
 *
 * A JPEG whose data ends early ("Premature end of JPEG file" or "premature end of data
 * segment") is an error, although libjpeg only warns and fills the rest with gray. Other
 * warnings are counted in warning_count and the image is returned.
 */
int cimg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, int jpeg_scale_denom,
                cimg_image *out, char *err, size_t errlen);

void cimg_free(cimg_image *image);

/*
 * Returns the orientation (1..8) stored in an EXIF block that starts with the TIFF header
 * ("II*\0" or "MM\0*"), or 1 when the block has none or is malformed.
 */
int cimg_exif_orientation(const uint8_t *tiff, size_t size);

#ifdef __cplusplus
}
#endif

#endif
