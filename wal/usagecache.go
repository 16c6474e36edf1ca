package wal

// usageCacheRowsMax bounds the cached usage rows. A row is per org, day,
// channel and group, so the set a node writes to moves with the days; when
// the cache is full it starts over, and the next write of each row reads it
// from Pebble once.
const usageCacheRowsMax = 200_000

// usageCache holds usage rows as stored, keyed by their state key. A write
// stages the rows it computed; they enter the cache only once the Pebble
// batch that stores them has committed, so a failed write leaves the cache
// equal to the disk.
type usageCache struct {
	rows    map[string]usageRow
	pending []pendingUsage
}

type pendingUsage struct {
	key string
	row usageRow
}

func (c *usageCache) get(key string) (usageRow, bool) {
	r, ok := c.rows[key]
	return r, ok
}

func (c *usageCache) stage(key string, r usageRow) {
	c.pending = append(c.pending, pendingUsage{key, r})
}

func (c *usageCache) commitPending() {
	if len(c.pending) == 0 {
		return
	}
	if c.rows == nil || len(c.rows)+len(c.pending) > usageCacheRowsMax {
		c.rows = make(map[string]usageRow, len(c.pending))
	}
	for _, p := range c.pending {
		c.rows[p.key] = p.row
	}
	c.dropPending()
}

func (c *usageCache) dropPending() {
	clear(c.pending)
	c.pending = c.pending[:0]
}

// reset forgets every row (the stored state was replaced).
func (c *usageCache) reset() {
	c.rows = nil
	c.dropPending()
}
