/* version.h - the library's own version. */
#ifndef MAINSTACK_VERSION_H
#define MAINSTACK_VERSION_H

#define MS_VERSION_MAJOR 0
#define MS_VERSION_MINOR 1
#define MS_VERSION_PATCH 0
#define MS_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif
/* The version of the library linked at run time ("0.1.0"). */
const char *ms_version(void);
#ifdef __cplusplus
}
#endif
#endif
