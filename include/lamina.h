/* lamina.h: the umbrella header, the only one a user needs to include.
 * Each area has its own header under lamina/. Not included: lamina/dist.h
 * (data parallelism over MPI, the optional library lamina_dist), which
 * needs mpi.h; a program using it includes it beside this one. */
#ifndef LAMINA_H
#define LAMINA_H

#include "lamina/version.h"
#include "lamina/options.h"
#include "lamina/status.h"
#include "lamina/runtime.h"
#include "lamina/tune.h"
#include "lamina/tensor.h"
#include "lamina/elementwise.h"
#include "lamina/reduce.h"
#include "lamina/linalg.h"
#include "lamina/shape.h"
#include "lamina/rng.h"
#include "lamina/init.h"
#include "lamina/ptree.h"
#include "lamina/autodiff.h"
#include "lamina/layer.h"
#include "lamina/dense.h"
#include "lamina/loss.h"
#include "lamina/optim.h"
#include "lamina/io.h"
#include "lamina/data.h"
#include "lamina/metrics.h"
#include "lamina/train.h"
#include "lamina/norm.h"
#include "lamina/regularize.h"
#include "lamina/blocks.h"
#include "lamina/conv.h"
#include "lamina/pool.h"
#include "lamina/attention.h"
#include "lamina/rnn.h"
#include "lamina/models.h"
#include "lamina/models_text.h"
#include "lamina/tokenizer.h"
#include "lamina/quant.h"

#endif
