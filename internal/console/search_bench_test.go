package console

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
)

// BenchmarkSearchInMemory measures Search alone (no HTTP, no API server)
// over 20,000 pods in two fake clusters, to see the scan's own cost.
func BenchmarkSearchInMemory(b *testing.B) {
	var a, c []runtime.Object
	for i := 0; i < 20000; i++ {
		p := pod(fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("pod-%d", i), fmt.Sprintf("node-%d", i%20), "100m", "128Mi",
			map[string]string{"app": fmt.Sprintf("web-%d", i%50), "team": fmt.Sprintf("team-%d", i%10), "pod-template-hash": "5d8f7c9b6"})
		p.Spec.Containers[0].Image = "ghcr.io/acme/web:1.0"
		if i%2 == 0 {
			a = append(a, p)
		} else {
			c = append(c, p)
		}
	}
	con, _ := startFakeTB(b, clocktesting.NewFakeClock(t0), fakeCluster(b, "a", a...), fakeCluster(b, "b", c...))
	for _, q := range []string{"app=web-7", "pod-1234", "kind:pod status:Running team=team-3 ns:ns-3"} {
		b.Run(q, func(b *testing.B) {
			pq, err := ParseQuery(q)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				con.Search(pq, 500, "")
			}
		})
	}
}
