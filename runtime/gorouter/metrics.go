package main

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The croupier_router_* metrics with the Python router's names, labels, help texts and buckets
// (croupier.runtime.metrics).
var routerBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0}

type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	weight   *prometheus.GaugeVec
	reloads  *prometheus.CounterVec
}

func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "croupier_router_requests_total",
			Help: "Requests the model router forwarded, by model, served version, label (stable, canary, none when the " +
				"request named its version) and canonical status code (OK, INVALID_ARGUMENT, UNAVAILABLE, ...).",
		}, []string{"model", "version", "label", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "croupier_router_request_duration_seconds",
			Help:    "Time from a request's arrival at the model router to its answer, TF Serving's time included.",
			Buckets: routerBuckets,
		}, []string{"model", "version", "label"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "croupier_router_canary_weight",
			Help: "Percent of the requests that name no version the router sends to the canary label, by model.",
		}, []string{"model"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "croupier_router_table_reloads_total",
			Help: "Reads of a changed routing file, by outcome (applied, invalid, unreadable).",
		}, []string{"outcome"}),
	}
	m.Registry.MustRegister(m.requests, m.latency, m.weight, m.reloads)
	return m
}

type counted struct {
	route Route
	code  string
}

// Service is the transport-free part both adapters call: route a request, count its answer.
type Service struct {
	Metrics    *Metrics
	Router     *Router
	mu         sync.Mutex
	weights    map[string]bool
	counters   sync.Map // counted -> prometheus.Counter
	histograms sync.Map // Route -> prometheus.Observer
}

func NewService(metrics *Metrics, table *RoutingTable) *Service {
	s := &Service{Metrics: metrics, Router: NewRouter(nil), weights: map[string]bool{}}
	if table == nil {
		table = &RoutingTable{Models: map[string]ModelRoute{}}
	}
	s.Replace(table)
	return s
}

// Replace swaps the table and keeps the canary weight gauge in step (a model no longer in the table is removed).
func (s *Service) Replace(table *RoutingTable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Router.Replace(table)
	for model := range s.weights {
		if _, kept := table.Models[model]; !kept {
			s.Metrics.weight.DeleteLabelValues(model)
		}
	}
	s.weights = map[string]bool{}
	for model, route := range table.Models {
		s.Metrics.weight.WithLabelValues(model).Set(route.CanaryWeight)
		s.weights[model] = true
	}
}

func (s *Service) Route(model string, version *int64, label *string, unit *string) Route {
	return s.Router.Route(model, version, label, unit)
}

func (s *Service) Record(route Route, code string, seconds float64) {
	key := counted{route, code}
	counter, ok := s.counters.Load(key)
	if !ok {
		counter, _ = s.counters.LoadOrStore(key, s.Metrics.requests.WithLabelValues(route.Model, route.Version, route.Label, code))
	}
	counter.(prometheus.Counter).Inc()
	histogram, ok := s.histograms.Load(route)
	if !ok {
		histogram, _ = s.histograms.LoadOrStore(route, s.Metrics.latency.WithLabelValues(route.Model, route.Version, route.Label))
	}
	histogram.(prometheus.Observer).Observe(seconds)
}

func (s *Service) RecordReload(outcome string) {
	s.Metrics.reloads.WithLabelValues(outcome).Inc()
}
