package console

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// encodingJSON is what the API wrote before: json.Encoder's output.
func encodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nastyStrings exercise every escape of encoding/json.
var nastyStrings = []string{"", "web", "<script>&amp;</script>", "quote\" back\\slash", "tab\tnl\ncr\r\b\f\x00\x1f\x7f",
	"ünïcødé ✓ 日本", "bad\xffutf8\xc3", "sep\u2028par\u2029", "emoji 🚢", "a/b=c,d"}

func nasty(r *rand.Rand) string { return nastyStrings[r.Intn(len(nastyStrings))] }

// The hand-written encoding writes the same bytes as encoding/json, for
// items with every kind of field, empty or not, and every escape.
func TestResultJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for round := 0; round < 300; round++ {
		res := Result{Query: nasty(r), Total: r.Intn(1000), Shown: r.Intn(100), TookMS: []float64{0, 0.001, 12.345, 1e-7, 3e21}[r.Intn(5)]}
		for g := 0; g < r.Intn(4); g++ {
			grp := ClusterGroup{Cluster: ClusterStatus{Name: nasty(r), State: StateReady, Objects: r.Intn(5), Error: nasty(r)}, Stale: r.Intn(2) == 0, Total: r.Intn(50)}
			if r.Intn(3) == 0 {
				grp.Cluster.LastSeen = t0
				grp.Cluster.Unavailable = []UnavailableKind{{Kind: "Secret", Reason: ReasonForbidden, Error: nasty(r), NextRetry: t0}}
			}
			switch r.Intn(3) {
			case 0: // nil items: null
			case 1:
				grp.Items = []*Item{}
			default:
				for i := 0; i < r.Intn(6); i++ {
					it := &Item{Cluster: nasty(r), Kind: nasty(r), Namespace: nasty(r), Name: nasty(r), UID: types.UID(nasty(r)),
						Status: nasty(r), Ready: nasty(r), Restarts: int32(r.Intn(3) - 1), Node: nasty(r), Owner: nasty(r), OwnerUID: "x",
						Created: []time.Time{{}, t0, t0.Add(123456789 * time.Nanosecond).In(time.FixedZone("x", -5*3600-30*60))}[r.Intn(3)],
						Since:   t0}
					switch r.Intn(3) {
					case 0:
						it.Labels = map[string]string{}
					case 1:
						it.Labels = map[string]string{nasty(r): nasty(r), nasty(r): nasty(r), "app": nasty(r), "z": "", "a": "1"}
					}
					switch r.Intn(3) {
					case 0:
						it.Images = []string{}
					case 1:
						it.Images = []string{nasty(r), nasty(r)}
					}
					grp.Items = append(grp.Items, it)
				}
			}
			res.Groups = append(res.Groups, grp)
		}
		got, ok := appendResultJSON(nil, res)
		if !ok {
			t.Fatalf("round %d: not encoded", round)
		}
		if want := encodingJSON(t, res); !bytes.Equal(got, want) {
			t.Fatalf("round %d:\ngot  %s\nwant %s", round, got, want)
		}
	}
}

// A time encoding/json refuses falls back to encoding/json's own answer.
func TestResultJSONFallsBack(t *testing.T) {
	res := Result{Groups: []ClusterGroup{{Items: []*Item{{Name: "x", Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}}}
	if _, ok := appendResultJSON(nil, res); ok {
		t.Fatal("year 10000 encoded, want fallback")
	}
	rec := httptest.NewRecorder()
	writeResultJSON(rec, res)
	want := httptest.NewRecorder()
	writeJSON(want, res)
	if rec.Body.String() != want.Body.String() {
		t.Fatalf("got %q, want %q", rec.Body, want.Body)
	}
}
