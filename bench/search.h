// The throughput search of the benchmark harness (twill-gen): the highest offered load at
// which a trial passes (no loss for the NDR, loss <= 0.5% for the PDR), as RFC 2544 and
// FD.io CSIT search it, to a relative precision.
#pragma once

#include <algorithm>

namespace twill::bench {

struct search_result {
    double rate = 0;      // the highest rate that passed (`lo` if none did)
    bool at_top = false;  // the top rate passed: the generator, not the DUT, is the limit
    unsigned trials = 0;
};

// `lo` passes (or is 0), `top` is the fastest the generator offers, `guess` where to look
// first (what the DUT forwarded at full load). Until something passes, a failed probe steps
// down by 10% the first time (loss usually starts just under the DUT's full-load rate),
// by half after that; once a pass and a failure bracket the answer, the bracket is halved
// until it is within `precision` of its top.
// At most `max_trials` trials.
template <typename Pass>
search_result search_rate(double lo, double top, double guess, double precision, Pass pass,
                          unsigned max_trials = 16) {
    search_result r;
    double pass_rate = lo;  // highest rate known to pass
    double fail_rate = -1;  // lowest rate known to fail (-1: none yet)
    double probe = std::clamp(guess, lo, top);
    unsigned step_downs = 0;
    if (probe <= lo) {
        probe = top;
    }
    while (r.trials < max_trials) {
        ++r.trials;
        if (pass(probe)) {
            pass_rate = probe;
            if (probe >= top) {
                r.at_top = true;
                break;
            }
        } else {
            fail_rate = probe;
        }
        if (fail_rate < 0) {
            probe = top;  // everything tried passed: try the top
        } else if (pass_rate <= lo && fail_rate * (step_downs ? 0.5 : 0.9) > lo) {
            probe = fail_rate * (step_downs++ ? 0.5 : 0.9);  // no pass above `lo` yet
        } else {
            if (fail_rate - pass_rate <= precision * fail_rate) {
                break;
            }
            probe = (pass_rate + fail_rate) / 2;
        }
    }
    r.rate = pass_rate;
    return r;
}

}  // namespace twill::bench
