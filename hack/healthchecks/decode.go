// Package healthchecks holds the Go tests that run Croupier's Argo CD health checks and kstatus over the same objects.
package healthchecks

import (
	"bytes"
	"encoding/json"
	"io"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// numbers converts json.Number values into int64 when integral and float64 otherwise, as
// unstructured.UnmarshalJSON does for Kubernetes objects.
func numbers(value any) any {
	switch v := value.(type) {
	case map[string]any:
		for key, item := range v {
			v[key] = numbers(item)
		}
		return v
	case []any:
		for i, item := range v {
			v[i] = numbers(item)
		}
		return v
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	}
	return value
}
