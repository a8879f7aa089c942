// Package ec2catalog is a catalogue of EC2 instance types: vCPU, memory,
// architecture, GPUs and other accelerators, and on-demand prices in a few
// regions. The data is types.csv, whose header names its source; `go
// generate` turns it into table.go. It carries every current family of
// general purpose (burstable t2, t3, t3a and t4g included), compute,
// memory, storage and accelerated instances, Intel, AMD and Graviton
// (arm64), metal sizes excepted. Lint checks mixed-instances pools with it
// (L04) and node sizes (L35); the console and the local cloud price nodes
// with it; `bosun catalogue` lists it.
package ec2catalog

import (
	"sort"
	"sync"
)

//go:generate go run gen.go

// Architectures.
const (
	ArchX86 = "x86_64"
	ArchARM = "arm64"
)

// Categories are the kinds of instance families, as AWS groups them (with
// burstable apart from the rest of general purpose).
var Categories = []string{"burstable", "general", "compute", "memory", "storage", "accelerated"}

// InstanceType is one EC2 instance type.
type InstanceType struct {
	// Name is e.g. m6i.xlarge.
	Name string `json:"name"`
	// Family is the part of the name before the dot, e.g. m6i.
	Family string `json:"family"`
	// Category is one of Categories.
	Category string `json:"category"`
	// VCPU is the number of virtual CPUs.
	VCPU int `json:"vcpu"`
	// MemoryMiB is the memory in MiB.
	MemoryMiB int64 `json:"memoryMiB"`
	// Arch is x86_64 or arm64.
	Arch string `json:"arch"`
	// GPUs is the number of GPUs (NVIDIA or AMD).
	GPUs int `json:"gpus"`
	// Accelerators counts other accelerator devices: AWS Inferentia and
	// Trainium (Neuron), Habana Gaudi, FPGAs, media accelerators.
	Accelerators int `json:"accelerators"`
	// Price maps region to the on-demand price in USD per hour; a region
	// without a price is absent.
	Price map[string]float64 `json:"price"`
}

// MemoryGiB returns the memory in GiB.
func (t InstanceType) MemoryGiB() float64 { return float64(t.MemoryMiB) / 1024 }

// row is one line of the generated table.
type row struct {
	name, family, category string
	vcpu                   int
	memoryMiB              int64
	arch                   string
	gpus, accelerators     int
	prices                 []float64 // by regionNames; 0 is none
}

var (
	once  sync.Once
	types map[string]InstanceType
)

func load() {
	types = make(map[string]InstanceType, len(table))
	for _, r := range table {
		t := InstanceType{Name: r.name, Family: r.family, Category: r.category, VCPU: r.vcpu, MemoryMiB: r.memoryMiB,
			Arch: r.arch, GPUs: r.gpus, Accelerators: r.accelerators, Price: make(map[string]float64, len(regionNames))}
		for i, p := range r.prices {
			if p > 0 {
				t.Price[regionNames[i]] = p
			}
		}
		types[t.Name] = t
	}
}

// Lookup returns the instance type called name.
func Lookup(name string) (InstanceType, bool) {
	once.Do(load)
	t, ok := types[name]
	return t, ok
}

// All returns every instance type, sorted by name.
func All() []InstanceType {
	once.Do(load)
	out := make([]InstanceType, 0, len(types))
	for _, t := range types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Families returns the families in the catalogue, sorted.
func Families() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range table {
		if !seen[r.family] {
			seen[r.family] = true
			out = append(out, r.family)
		}
	}
	sort.Strings(out)
	return out
}

// Regions returns the regions that have prices.
func Regions() []string {
	return append([]string(nil), regionNames...)
}
