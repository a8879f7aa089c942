// Package catalogue implements `bosun catalogue`: the EC2 instance types
// Bosun knows (internal/ec2catalog), which lint checks pools against (L04,
// L35) and the console and the local cloud price nodes with.
package catalogue

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
	"github.com/bosun-platform/bosun/internal/ec2catalog"
)

type flagpole struct {
	families   []string
	categories []string
	arch       string
	gpu        bool
	minVCPU    int
	region     string
	output     string
}

// NewCommand returns `bosun catalogue`.
func NewCommand(streams iostreams.IOStreams) *cobra.Command {
	flags := &flagpole{}
	cmd := &cobra.Command{
		Use:     "catalogue",
		Aliases: []string{"catalog"},
		Short:   "List the EC2 instance types Bosun knows: vCPU, memory, architecture, GPUs, price",
		Long: `List the EC2 instance types in Bosun's catalogue: every current family of
general purpose (burstable t2, t3, t3a, t4g included), compute, memory,
storage and accelerated instances, Intel, AMD and Graviton (arm64), with
vCPU, memory, architecture, GPUs, other accelerators (Neuron, Gaudi, FPGA)
and the on-demand price per hour in one region.

"bosun lint" checks node pools against it: one size per pool (L04), one
architecture per pool, DaemonSet overhead per node (L35); a type it lacks
is a warning. The data, with its source and date, is
internal/ec2catalog/types.csv; "bosun catalogue refresh" will rewrite it
from the EC2 API once the AWS provider exists.

The filters combine: --family and --category take several values.`,
		Example: `  bosun catalogue --family m7g,t4g
  bosun catalogue --category accelerated --gpu
  bosun catalogue --arch arm64 --min-vcpu 8 --region eu-central-1
  bosun catalogue -o json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			types, err := flags.filter()
			if err != nil {
				return err
			}
			if flags.output == "json" {
				enc := json.NewEncoder(streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(types)
			}
			return flags.table(streams, types)
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:    "refresh",
		Short:  "Rewrite the catalogue from the EC2 API (comes with the AWS provider)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("bosun catalogue refresh needs the AWS provider (DescribeInstanceTypes and the price list), which Bosun does not have yet; until then edit internal/ec2catalog/types.csv and run go generate ./internal/ec2catalog/")
		},
	})
	f := cmd.Flags()
	f.StringSliceVar(&flags.families, "family", nil, "only these families, e.g. m7g,t3 (default: all)")
	f.StringSliceVar(&flags.categories, "category", nil, "only these categories: "+strings.Join(ec2catalog.Categories, ", ")+" (default: all)")
	f.StringVar(&flags.arch, "arch", "", "only this architecture: x86_64 or arm64 (default: both)")
	f.BoolVar(&flags.gpu, "gpu", false, "only types with GPUs")
	f.IntVar(&flags.minVCPU, "min-vcpu", 0, "only types with at least this many vCPUs")
	f.StringVar(&flags.region, "region", "us-east-1", "the region whose price is shown: "+strings.Join(ec2catalog.Regions(), ", "))
	f.StringVarP(&flags.output, "output", "o", "text", "output format: text or json (json has every region's price)")
	return cmd
}

// filter validates the flags and returns the matching types.
func (f *flagpole) filter() ([]ec2catalog.InstanceType, error) {
	if f.output != "text" && f.output != "json" {
		return nil, fmt.Errorf("--output %q: expected text or json", f.output)
	}
	if f.arch != "" && f.arch != ec2catalog.ArchX86 && f.arch != ec2catalog.ArchARM {
		return nil, fmt.Errorf("--arch %q: expected x86_64 or arm64", f.arch)
	}
	if !slices.Contains(ec2catalog.Regions(), f.region) {
		return nil, fmt.Errorf("--region %q: the catalogue has prices for %s", f.region, strings.Join(ec2catalog.Regions(), ", "))
	}
	if f.minVCPU < 0 {
		return nil, fmt.Errorf("--min-vcpu %d: expected 0 or more", f.minVCPU)
	}
	for _, c := range f.categories {
		if !slices.Contains(ec2catalog.Categories, c) {
			return nil, fmt.Errorf("--category %q: expected one of %s", c, strings.Join(ec2catalog.Categories, ", "))
		}
	}
	known := ec2catalog.Families()
	for _, fam := range f.families {
		if !slices.Contains(known, fam) {
			return nil, fmt.Errorf("--family %q: not in the catalogue (families: %s)", fam, strings.Join(known, ", "))
		}
	}
	var out []ec2catalog.InstanceType
	for _, t := range ec2catalog.All() {
		if (len(f.families) > 0 && !slices.Contains(f.families, t.Family)) ||
			(len(f.categories) > 0 && !slices.Contains(f.categories, t.Category)) ||
			(f.arch != "" && t.Arch != f.arch) || (f.gpu && t.GPUs == 0) || t.VCPU < f.minVCPU {
			continue
		}
		out = append(out, t)
	}
	sortBySize(out)
	return out, nil
}

// sortBySize orders by family, then vCPU and memory, so each family reads
// from small to large.
func sortBySize(types []ec2catalog.InstanceType) {
	slices.SortStableFunc(types, func(a, b ec2catalog.InstanceType) int {
		if c := strings.Compare(a.Family, b.Family); c != 0 {
			return c
		}
		if a.VCPU != b.VCPU {
			return a.VCPU - b.VCPU
		}
		if a.MemoryMiB != b.MemoryMiB {
			if a.MemoryMiB < b.MemoryMiB {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func (f *flagpole) table(streams iostreams.IOStreams, types []ec2catalog.InstanceType) error {
	tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TYPE\tCATEGORY\tVCPU\tMEMORY GIB\tARCH\tGPUS\tACCELERATORS\tUSD/HOUR %s\n", f.region)
	for _, t := range types {
		price := "-"
		if p, ok := t.Price[f.region]; ok {
			price = fmt.Sprintf("%.4f", p)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%g\t%s\t%d\t%d\t%s\n", t.Name, t.Category, t.VCPU, t.MemoryGiB(), t.Arch, t.GPUs, t.Accelerators, price)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(streams.ErrOut, "%d instance types\n", len(types))
	return err
}
