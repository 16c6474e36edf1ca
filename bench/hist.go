package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, as HDR histograms do:
// every power of two is split into histSubBuckets equal slots, so a recorded
// value is known to within 1/histSubBuckets (under 0.8 %) of itself, from
// one nanosecond to histValueMax, in a fixed array with no allocation per
// value. A Histogram is not safe for concurrent use: give each goroutine its
// own and Merge them at the end.
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	sumNs  float64
	minNs  int64
	maxNs  int64
}

const (
	// histSubBits is log2 of the slots per power of two.
	histSubBits    = 7
	histSubBuckets = 1 << histSubBits
	// histExponentMax bounds the powers of two above the linear range:
	// values up to histSubBuckets<<histExponentMax ns (about 39 hours).
	histExponentMax = 40
	histBuckets     = (histExponentMax + 1) * histSubBuckets
	histValueMax    = int64(histSubBuckets)<<histExponentMax - 1
)

// histIndex is the bucket of v (ns, 0 <= v <= histValueMax). Values below
// histSubBuckets have a bucket each; above, a bucket covers 2^exp values.
func histIndex(v int64) int {
	if v < histSubBuckets {
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - histSubBits - 1 // v>>exp is in [128, 256)
	return (exp+1)*histSubBuckets + int(v>>exp) - histSubBuckets
}

// histUpper is the largest value that lands in bucket i.
func histUpper(i int) int64 {
	if i < histSubBuckets {
		return int64(i)
	}
	exp := i/histSubBuckets - 1
	mantissa := int64(i%histSubBuckets + histSubBuckets)
	return (mantissa+1)<<exp - 1
}

// Record adds one duration. Negative durations count as 0; durations beyond
// the range count as its maximum.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > histValueMax {
		v = histValueMax
	}
	h.counts[histIndex(v)]++
	if h.total == 0 || v < h.minNs {
		h.minNs = v
	}
	if v > h.maxNs {
		h.maxNs = v
	}
	h.total++
	h.sumNs += float64(v)
}

// Merge adds every value of o into h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.minNs < h.minNs {
		h.minNs = o.minNs
	}
	h.maxNs = max(h.maxNs, o.maxNs)
	h.total += o.total
	h.sumNs += o.sumNs
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxNs) }

// Min is the smallest recorded value, exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.minNs) }

// Mean is the average of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sumNs / float64(h.total))
}

// Quantile returns the value at quantile q (0..1): the upper bound of the
// bucket holding the ceil(q*count)-th smallest value, capped at the exact
// maximum. It is never below the true quantile and at most 1/128 above it.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histUpper(i), h.maxNs))
		}
	}
	return time.Duration(h.maxNs)
}
