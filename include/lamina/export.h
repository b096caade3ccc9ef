/* lamina/export.h: LAM_API marks the functions liblamina exports.
 *
 * The library is built with hidden visibility, so only declarations marked
 * LAM_API are visible outside it; internal functions (the lam__ prefix) are
 * not. On Windows the same macro selects dllexport while building the DLL
 * (LAMINA_BUILDING) and dllimport for its users, unless they link the
 * static library (define LAMINA_STATIC). */
#ifndef LAMINA_EXPORT_H
#define LAMINA_EXPORT_H

#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(LAMINA_STATIC)
#    define LAM_API
#  elif defined(LAMINA_BUILDING)
#    define LAM_API __declspec(dllexport)
#  else
#    define LAM_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define LAM_API __attribute__((visibility("default")))
#else
#  define LAM_API
#endif

#endif
