// Runs Flux's CEL health checks (flux-healthcheckexprs.yaml, as a Kustomization's spec.healthCheckExprs) over the
// same testdata with Flux's own status reader (github.com/fluxcd/pkg/runtime/cel on kstatus's generic reader): what
// kustomize-controller reports while it waits. kstatus_expectations.yaml's `flux` field says what it must answer.
package healthchecks

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluxcd/pkg/apis/kustomize"
	fluxcel "github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type fluxHealthChecks struct {
	HealthCheckExprs []kustomize.CustomHealthCheck `json:"healthCheckExprs"`
}

func TestFluxHealthCheckExprs(t *testing.T) {
	raw, err := os.ReadFile("flux-healthcheckexprs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var checks fluxHealthChecks
	if err := yaml.UnmarshalStrict(raw, &checks); err != nil {
		t.Fatalf("flux-healthcheckexprs.yaml: %v", err)
	}
	newReader, err := fluxcel.NewStatusReader(checks.HealthCheckExprs)
	if err != nil {
		t.Fatalf("Flux refuses the expressions: %v", err)
	}
	reader := newReader(meta.NewDefaultRESTMapper(nil))
	for _, tc := range loadKstatusCases(t).Tests {
		t.Run(tc.InputPath, func(t *testing.T) {
			if tc.Flux == "" {
				t.Fatal("no `flux` expectation")
			}
			manifest, err := os.ReadFile(filepath.Join(customizations, tc.InputPath))
			if err != nil {
				t.Fatal(err)
			}
			encoded, err := yaml.YAMLToJSON(manifest)
			if err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(encoded); err != nil {
				t.Fatal(err)
			}
			result, err := reader.ReadStatusForObject(context.Background(), nil, obj)
			if err != nil {
				t.Fatalf("ReadStatusForObject: %v", err)
			}
			if string(result.Status) != tc.Flux {
				t.Errorf("Flux health = %s (%v), want %s", result.Status, result.Error, tc.Flux)
			}
		})
	}
}
