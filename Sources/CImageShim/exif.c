/* Reads the orientation tag (0x0112) from IFD0 of an EXIF/TIFF block, with bounds checks on
 * every read because the block comes from an untrusted file. */

#include "internal.h"

static uint32_t read_u16(const uint8_t *p, int little_endian) {
    return little_endian ? (uint32_t)(p[0] | (p[1] << 8)) : (uint32_t)((p[0] << 8) | p[1]);
}

static uint32_t read_u32(const uint8_t *p, int little_endian) {
    if (little_endian) {
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    }
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

int cimg_exif_orientation(const uint8_t *tiff, size_t size) {
    if (tiff == NULL || size < 8) return 1;

    int little_endian;
    if (tiff[0] == 'I' && tiff[1] == 'I') {
        little_endian = 1;
    } else if (tiff[0] == 'M' && tiff[1] == 'M') {
        little_endian = 0;
    } else {
        return 1;
    }
    if (read_u16(tiff + 2, little_endian) != 42) return 1;

    /* IFD0: a 2-byte entry count, then 12-byte entries (tag, type, count, value). */
    uint32_t ifd = read_u32(tiff + 4, little_endian);
    if (ifd > size || size - ifd < 2) return 1;
    uint32_t entries = read_u16(tiff + ifd, little_endian);
    for (uint32_t i = 0; i < entries; i++) {
        size_t entry = (size_t)ifd + 2 + (size_t)i * 12;
        if (entry + 12 > size) return 1;
        uint32_t tag = read_u16(tiff + entry, little_endian);
        if (tag != 0x0112) continue;
        uint32_t type = read_u16(tiff + entry + 2, little_endian);
        uint32_t count = read_u32(tiff + entry + 4, little_endian);
        if (type != 3 || count != 1) return 1; /* SHORT, one value */
        uint32_t value = read_u16(tiff + entry + 8, little_endian);
        return (value >= 1 && value <= 8) ? (int)value : 1;
    }
    return 1;
}
