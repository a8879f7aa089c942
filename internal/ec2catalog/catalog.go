// Package ec2catalog is an embedded catalogue of EC2 instance types: vCPU,
// memory, architecture and approximate on-demand prices in a few regions.
// It covers the m, c and r families of generations 5 to 7 with their a, i,
// n and g variants, sizes large to 24xlarge. Lint uses it to check that a
// mixed-instances pool has equal sizes (L04) and node sizes (L35).
package ec2catalog

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:generate go run gen.go

//go:embed types.csv
var typesCSV string

// InstanceType is one EC2 instance type.
type InstanceType struct {
	// Name is e.g. m6i.xlarge.
	Name string
	// VCPU is the number of virtual CPUs.
	VCPU int
	// MemoryMiB is the memory in MiB.
	MemoryMiB int64
	// Arch is x86_64 or arm64.
	Arch string
	// Price maps region to the approximate on-demand price in USD per hour.
	Price map[string]float64
}

// MemoryGiB returns the memory in GiB.
func (t InstanceType) MemoryGiB() float64 { return float64(t.MemoryMiB) / 1024 }

var (
	once    sync.Once
	types   map[string]InstanceType
	regions []string
	loadErr error
)

func load() {
	r := csv.NewReader(strings.NewReader(typesCSV))
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		loadErr = fmt.Errorf("reading embedded types.csv, %w", err)
		return
	}
	header := rows[0]
	for _, h := range header[4:] {
		regions = append(regions, strings.TrimPrefix(h, "price_"))
	}
	types = make(map[string]InstanceType, len(rows)-1)
	for i, row := range rows[1:] {
		t, err := parseRow(row, regions)
		if err != nil {
			loadErr = fmt.Errorf("types.csv row %d, %w", i+2, err)
			return
		}
		types[t.Name] = t
	}
}

func parseRow(row, regions []string) (InstanceType, error) {
	cpu, err := strconv.Atoi(row[1])
	if err != nil {
		return InstanceType{}, fmt.Errorf("vcpu %q, %w", row[1], err)
	}
	gib, err := strconv.ParseFloat(row[2], 64)
	if err != nil {
		return InstanceType{}, fmt.Errorf("memory %q, %w", row[2], err)
	}
	t := InstanceType{Name: row[0], VCPU: cpu, MemoryMiB: int64(gib * 1024), Arch: row[3], Price: map[string]float64{}}
	for i, region := range regions {
		p, err := strconv.ParseFloat(row[4+i], 64)
		if err != nil {
			return InstanceType{}, fmt.Errorf("price %q, %w", row[4+i], err)
		}
		t.Price[region] = p
	}
	return t, nil
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

// Regions returns the regions that have prices.
func Regions() []string {
	once.Do(load)
	return append([]string(nil), regions...)
}

// Err reports whether the embedded data failed to load (a build defect).
func Err() error {
	once.Do(load)
	return loadErr
}
