// Runs kstatus (what Flux's kustomize-controller uses for `wait: true` and healthChecks) over the same testdata as
// the Argo CD checks. kstatus_expectations.yaml says what Compute must answer for each object; docs/gitops.md has
// the table.
package healthchecks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type kstatusCase struct {
	InputPath string `json:"inputPath"`
	Status    string `json:"status"`
	Message   string `json:"message"`
	// Flux is what kustomize-controller reports with flux-healthcheckexprs.yaml (flux_cel_test.go).
	Flux string `json:"flux"`
}

type kstatusCases struct {
	Tests []kstatusCase `json:"tests"`
}

func loadKstatusCases(t *testing.T) kstatusCases {
	t.Helper()
	raw, err := os.ReadFile("kstatus_expectations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases kstatusCases
	if err := yaml.UnmarshalStrict(raw, &cases); err != nil {
		t.Fatalf("kstatus_expectations.yaml: %v", err)
	}
	return cases
}

func TestKstatusCompute(t *testing.T) {
	cases := loadKstatusCases(t)
	listed := map[string]bool{}
	for _, tc := range cases.Tests {
		listed[filepath.Clean(tc.InputPath)] = true
		t.Run(tc.InputPath, func(t *testing.T) {
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
			result, err := status.Compute(obj)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			if string(result.Status) != tc.Status || result.Message != tc.Message {
				t.Errorf("kstatus = %s %q, want %s %q", result.Status, result.Message, tc.Status, tc.Message)
			}
		})
	}
	// Every object the Argo CD checks are tested with has a kstatus expectation too.
	for _, dir := range kindDirs(t) {
		files, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
		for _, file := range files {
			rel, _ := filepath.Rel(customizations, file)
			if !listed[rel] {
				t.Errorf("%s has no entry in kstatus_expectations.yaml", rel)
			}
		}
	}
}
