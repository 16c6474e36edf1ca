package server

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Metrics are the Prometheus metrics of a node. Routes are patterns, never
// raw paths, so label cardinality stays bounded.
type Metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	charges       *prometheus.CounterVec
	batchCommands prometheus.Histogram
	batchBytes    prometheus.Histogram
	commitSeconds prometheus.Histogram
	applied       prometheus.Counter
	wallets       atomic.Pointer[func() float64]
	storage       storageCollector
	handler       fasthttp.RequestHandler
}

// NewMetrics registers the metrics on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orbit_http_requests_total", Help: "HTTP requests by route pattern and status code.",
	}, []string{"route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "orbit_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	m.charges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orbit_charges_total", Help: "Charges by result.",
	}, []string{"result"})
	m.batchCommands = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "orbit_raft_batch_commands", Help: "Commands per proposed Raft log entry.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	})
	m.batchBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "orbit_raft_batch_bytes", Help: "Encoded bytes per proposed Raft log entry.",
		Buckets: prometheus.ExponentialBuckets(256, 4, 8),
	})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "orbit_raft_commit_seconds", Help: "Time from proposing a batch to its result.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.applied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orbit_applied_commands_total", Help: "Commands applied by this node's state machine.",
	})
	wallets := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orbit_wallets", Help: "Org wallets held in memory.",
	}, func() float64 {
		if f := m.wallets.Load(); f != nil {
			return (*f)()
		}
		return 0
	})
	m.reg.MustRegister(m.requests, m.latency, m.charges, m.batchCommands, m.batchBytes, m.commitSeconds, m.applied, wallets, &m.storage,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return m
}

func (m *Metrics) setWallets(f func() float64) { m.wallets.Store(&f) }

// statusLabels are the status codes' label values, made once: a request
// does not format its status.
var statusLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func statusLabel(status int) string {
	if status >= 0 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return strconv.Itoa(status)
}

func (m *Metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, statusLabel(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *Metrics) charge(result string) { m.charges.WithLabelValues(result).Inc() }

// ObserveBatch records a proposed batch (a raftstore hook).
func (m *Metrics) ObserveBatch(commands, bytes int) {
	m.batchCommands.Observe(float64(commands))
	m.batchBytes.Observe(float64(bytes))
}

// ObserveCommit records how long a batch took to commit and apply.
func (m *Metrics) ObserveCommit(d time.Duration) { m.commitSeconds.Observe(d.Seconds()) }

// ObserveApply records applied commands.
func (m *Metrics) ObserveApply(_, commands int) { m.applied.Add(float64(commands)) }

func (m *Metrics) serve(ctx *fasthttp.RequestCtx) { m.handler(ctx) }
