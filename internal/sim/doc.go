// Package sim runs scenarios written as data on a cluster of rumor agents
// (package internal/cluster): on the simulated network in virtual time, or
// on real TCP. The scenarios are testdata/scenarios/*.txt; Script documents
// their directives. make sim runs them all.
package sim
