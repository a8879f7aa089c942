package console

import "strings"

// redact is the one step every object passes before the console renders
// it (detail YAML, custom objects, anything read live). It works on the
// object's own shape, not on what the route believed it asked for, so a
// request that reached a different resource than intended still cannot
// show what the console never shows:
//
//   - managed fields and kubectl's last-applied-configuration annotation
//     (a second full copy of the object, Secrets included);
//   - the data, stringData and binaryData of Secrets and ConfigMaps, whatever
//     the spelling of the kind (Secret, secret, SecretList, ...);
//   - the same for every element of a list (an "items" array), whatever the
//     list's own kind.
//
// It changes m in place and returns it.
func redact(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
		if a, ok := md["annotations"].(map[string]any); ok {
			delete(a, lastApplied)
		}
	}
	kind, _ := m["kind"].(string)
	if holdsData(kind) {
		dropData(m)
	}
	if items, ok := m["items"].([]any); ok {
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				// Items of a typed list often carry no kind of their own;
				// holdsData treats those as holding data.
				redact(im)
			}
		}
	}
	return m
}

// dropData removes the fields that carry a Secret's or ConfigMap's data.
func dropData(m map[string]any) {
	delete(m, "data")
	delete(m, "stringData")
	delete(m, "binaryData")
}

// holdsData reports whether kind names Secrets or ConfigMaps or a list of
// them, in any letter case. An object without a kind is treated as holding
// data: the console cannot tell, so it shows none.
func holdsData(kind string) bool {
	k := strings.ToLower(strings.TrimSpace(kind))
	k = strings.TrimSuffix(k, "list")
	return k == "" || k == "secret" || k == "secrets" || k == "configmap" || k == "configmaps"
}
