/* lamina/init.h: parameter initializers (Kaun's Init). Filled in by the init work. */
#ifndef LAMINA_INIT_H
#define LAMINA_INIT_H

#include "lamina/rng.h"

#endif
