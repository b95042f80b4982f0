#ifndef CIMAGESHIM_H
#define CIMAGESHIM_H
/* Placeholder header; the image decoding API is defined with the Dataset module. */
int cimageshim_version(void);
#endif
