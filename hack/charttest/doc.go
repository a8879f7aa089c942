// Package charttest tests charts/bosun-agent with Helm's Go SDK. It is a
// module of its own so that Helm's dependencies stay out of Bosun's.
package charttest
