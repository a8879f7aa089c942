package render

import (
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// BenchmarkDecodeConfigMap decodes the parsed YAML of a ConfigMap of
// 5,000 and of 20,000 keys, both in every iteration, with yaml.v3's
// Node.Decode (what render did before issue 18) and with decodeValue. It
// reports the time of 20,000 keys as a ratio of 5,000 measured in the
// same iteration (x-time-4x-keys): 4 is linear, 16 quadratic.
func BenchmarkDecodeConfigMap(b *testing.B) {
	small, large := parseDoc(b, configMapYAML(5000)), parseDoc(b, configMapYAML(20000))
	decoders := []struct {
		name   string
		decode func(*yaml.Node) (any, error)
	}{
		{"yaml.v3", yamlV3Value},
		{"decodeValue", decodeValue},
	}
	for _, d := range decoders {
		b.Run("decoder="+d.name, func(b *testing.B) {
			var tSmall, tLarge time.Duration
			for i := 0; i < b.N; i++ {
				for _, c := range []struct {
					doc *yaml.Node
					t   *time.Duration
				}{{small, &tSmall}, {large, &tLarge}} {
					start := time.Now()
					if _, err := d.decode(c.doc); err != nil {
						b.Fatal(err)
					}
					*c.t += time.Since(start)
				}
			}
			b.ReportMetric(float64(tSmall.Milliseconds())/float64(b.N), "ms-5k-keys")
			b.ReportMetric(float64(tLarge.Milliseconds())/float64(b.N), "ms-20k-keys")
			b.ReportMetric(float64(tLarge)/float64(tSmall), "x-time-4x-keys")
		})
	}
}
