#ifndef CSPSHIM_H
#define CSPSHIM_H
#ifdef __cplusplus
extern "C" {
#endif
/* Placeholder header; the tokenizer API is defined with the Dataset module. */
int cspshim_version(void);
#ifdef __cplusplus
}
#endif
#endif
