package server

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"
)

// rateLimiter is a token bucket per API key (SPEC.md section 3: off by
// default, `--rate-limit`; over the limit is 429 with Retry-After). Each key
// may make `rate` requests per second on average, in bursts of up to one
// second's worth. Buckets live in shards so keys rarely share a lock.
type rateLimiter struct {
	rate   float64 // tokens per second; also the burst
	seed   maphash.Seed
	shards [64]rateShard
}

type rateShard struct {
	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

// rateLimitKeysMax bounds the buckets kept per shard; full buckets (idle
// keys) are dropped first when a shard is full.
const rateLimitKeysMax = 4096

func newRateLimiter(perSecond float64) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	l := &rateLimiter{rate: perSecond, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*tokenBucket)
	}
	return l
}

// allow takes one token for key, or reports how long until one is free.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.buckets[key]
	if !ok {
		if len(sh.buckets) >= rateLimitKeysMax {
			l.evictFull(sh, now)
		}
		b = &tokenBucket{tokens: l.rate, last: now}
		sh.buckets[key] = b
	}
	b.tokens = math.Min(l.rate, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// evictFull drops buckets that have refilled completely: forgetting them
// changes nothing, since a new bucket starts full.
func (l *rateLimiter) evictFull(sh *rateShard, now time.Time) {
	for k, b := range sh.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.rate {
			delete(sh.buckets, k)
		}
	}
}

// retryAfterSeconds rounds a wait up to whole seconds (at least 1).
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
