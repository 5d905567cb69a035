package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstguard/rstguard/control/health"
)

// Health exports the daemon's assessment as rstguard_health{reason}: one
// series per reason code, its level while it holds (1 warning, 2 critical),
// 0 otherwise, so that max(rstguard_health) is the daemon's level and no
// series appears or vanishes with the state.
func Health(host string, last func() health.Result) prometheus.Collector {
	desc := prometheus.NewDesc("rstguard_health",
		"The daemon's health by reason: 0 fine, 1 warning, 2 critical (docs/DEPLOYMENT.md, Health).",
		[]string{"reason"}, prometheus.Labels{"host": host})
	return collector{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		r := last()
		for _, code := range health.Reasons {
			level, _ := r.Of(code)
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(level), code)
		}
	}}
}

// WriteLost exports rstguard_write_lost_total{file}: records (events,
// evidence frames) a file could not take, as a full disk.
func WriteLost(host string, lost map[string]func() uint64) prometheus.Collector {
	desc := prometheus.NewDesc("rstguard_write_lost_total",
		"Records the event log or the evidence file could not take (a write failed, or waited out its retry).",
		[]string{"file"}, prometheus.Labels{"host": host})
	return collector{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		for file, n := range lost {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n()), file)
		}
	}}
}

// collector is one metric family read at scrape time.
type collector struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// WirePorts exports rstguard_wire_port{iface,pair,fail}: 1 for each port of
// a wire pair (pairs as "A:B"), so that a query joins the per-port
// counters (rstguard_program_counters_total{counter=~"wire_.*"}) to their
// pair on iface.
func WirePorts(host string, pairs []string, fail string) prometheus.Collector {
	desc := prometheus.NewDesc("rstguard_wire_port",
		"1 for each port of a wire pair (--wire A:B), with its pair and --wire-fail.",
		[]string{"iface", "pair", "fail"}, prometheus.Labels{"host": host})
	return collector{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		for _, pair := range pairs {
			for port := range strings.SplitSeq(pair, ":") {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1, port, pair, fail)
			}
		}
	}}
}
