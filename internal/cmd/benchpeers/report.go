package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reportInput is what a run measured.
type reportInput struct {
	command string
	names   []string // names[0] is the reference
	// results[i][w] are server i's measurements of workload w; refs[i][w]
	// the reference's, each taken next to the one of results[i][w] at the
	// same index (refs[0] is unused).
	results, refs [][2][]result
	rounds        int
	round         time.Duration
	took          time.Duration
	load          [2]string // load average before and after
}

// ratios returns f(server i) / f(the reference) for each pair of
// measurements of workload w taken side by side.
func (in reportInput) ratios(i, w int, f func(result) float64) []float64 {
	var out []float64
	for r, res := range in.results[i][w] {
		if i == 0 {
			out = append(out, 1)
		} else if r < len(in.refs[i][w]) {
			out = append(out, f(res)/f(in.refs[i][w][r]))
		}
	}
	return out
}

// inverse is 1/x of each.
func inverse(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = 1 / x
	}
	return out
}

func (in reportInput) values(i, w int, f func(result) float64) []float64 {
	var out []float64
	for _, r := range in.results[i][w] {
		out = append(out, f(r))
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// num prints a figure with three significant digits or so.
func num(x float64) string {
	switch {
	case x < 0.1:
		return strconv.FormatFloat(x, 'g', 2, 64)
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// spread is "median (min–max)".
func spread(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", num(median(v)), num(slices.Min(v)), num(slices.Max(v)))
}

func total(r result) float64 {
	return float64((r.cpu + r.backend).Microseconds()) / float64(r.requests)
}

// report writes the tables of BENCHMARKS.md: per workload, each server's
// CPU per request and throughput with their ratios to the reference in the
// same round, then the targets.
func report(w io.Writer, in reportInput) {
	fmt.Fprintf(w, "```\n%s\n```\n\n", in.command)
	fmt.Fprintf(w, "%d rounds of %v per server and workload (%v in all), %d keep-alive connections; load average %s before, %s after.\n", in.rounds, in.round, in.took.Round(time.Second), conns, in.load[0], in.load[1])
	fmt.Fprintf(w, "Ratios are against %q measured interleaved with it (%d slices each; 1 for a server above %d µs per request): median (min–max) over the rounds.\n", in.names[0], interleave, slowCPU)
	fmt.Fprintf(w, "CPU is the server's process tree; \"+ slapd, PostgreSQL\" adds what the directory and the database spent meanwhile.\n")
	cpu := func(r result) float64 { return r.cpuPerRequest() }
	rps := func(r result) float64 { return r.rps() }
	for wi, wl := range workloads {
		fmt.Fprintf(w, "\n#### %s\n\n", wl.name)
		fmt.Fprintf(w, "| server | CPU µs/request | CPU ratio | + slapd, PostgreSQL µs/request | ratio | req/s | req/s ratio | load generator busy |\n")
		fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
		for i, name := range in.names {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %.0f%% |\n", name,
				num(median(in.values(i, wi, cpu))), spread(in.ratios(i, wi, cpu)),
				num(median(in.values(i, wi, total))), spread(in.ratios(i, wi, total)),
				num(median(in.values(i, wi, rps))), spread(in.ratios(i, wi, rps)),
				100*median(in.values(i, wi, result.clientBusy)))
		}
	}
	idx := func(prefix string) int {
		return slices.IndexFunc(in.names, func(n string) bool { return strings.HasPrefix(n, prefix) })
	}
	off, cacheOn, cacheOff := idx("davserver, authentication off"), idx("Apache mod_dav + mod_authnz_ldap, LDAP cache on"), idx("Apache mod_dav + mod_authnz_ldap, LDAP cache off")
	fmt.Fprintf(w, "\nThe issue's targets (CPU per request, same rounds):\n\n")
	if off >= 0 {
		for wi, wl := range workloads {
			fmt.Fprintf(w, "- davserver, app password ÷ authentication off, %s: %s (target at most 1.03)\n", wl.name, spread(inverse(in.ratios(off, wi, cpu))))
		}
	}
	for _, c := range []struct {
		i      int
		target string
	}{{cacheOn, "1.3"}, {cacheOff, "3"}} {
		if c.i < 0 {
			continue
		}
		fmt.Fprintf(w, "- %s ÷ davserver, %s: %s; with slapd's CPU: %s (target at least %s)\n", in.names[c.i], workloads[0].name,
			spread(in.ratios(c.i, 0, cpu)), spread(in.ratios(c.i, 0, total)), c.target)
	}
}
