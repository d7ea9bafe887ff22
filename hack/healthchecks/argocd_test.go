// Runs config/argocd's health checks the way Argo CD runs them (util/lua in argo-cd): gopher-lua (Lua 5.1) with the
// package, base and table libraries and the json module, the object decoded into the global `obj`, the returned table encoded with
// layeh.com/gopher-json, and a status outside Argo's set replaced by Unknown. Each kind's health_test.yaml lists
// testdata objects and the health Argo CD must report for them, as Argo CD's own resource_customizations tests do.
package healthchecks

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// Where the checks live, relative to this module (hack/healthchecks).
const customizations = "../../config/argocd/resource_customizations"

// Argo CD's health status codes (gitops-engine pkg/health).
var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Healthy": true, "Suspended": true, "Degraded": true, "Missing": true,
}

const invalidHealthStatus = "Lua returned an invalid health status"

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type healthTest struct {
	HealthStatus healthStatus `json:"healthStatus"`
	InputPath    string       `json:"inputPath"`
}

type healthTests struct {
	Tests []healthTest `json:"tests"`
}

// decodeValue turns a decoded JSON/YAML value into a Lua value, as argo-cd's util/lua does.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case float64:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case bool:
		return lua.LBool(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}
	return lua.LNil
}

// runHealth executes a health.lua script against obj and returns what Argo CD would show.
func runHealth(script string, obj map[string]any) (*healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	// Argo CD also preloads the json module (and opens a restricted os library, which the checks do not use).
	luajson.Preload(l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	returned := l.Get(-1)
	switch returned.Type() {
	case lua.LTTable:
		encoded, err := luajson.Encode(returned)
		if err != nil {
			return nil, err
		}
		status := &healthStatus{}
		if err := json.Unmarshal(encoded, status); err != nil {
			return nil, err
		}
		if !validStatuses[status.Status] {
			return &healthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
		}
		return status, nil
	case lua.LTNil:
		return &healthStatus{}, nil
	}
	return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
}

// loadObject reads a testdata manifest as Kubernetes' unstructured decoding does (integers stay int64).
func loadObject(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	decoder := json.NewDecoder(bytesReader(encoded))
	decoder.UseNumber()
	var obj map[string]any
	if err := decoder.Decode(&obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	converted, _ := numbers(obj).(map[string]any)
	return converted
}

func kindDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(customizations, "*", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no health checks under %s (%v)", customizations, err)
	}
	return dirs
}

func TestArgoCDHealthChecks(t *testing.T) {
	for _, dir := range kindDirs(t) {
		script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		var tests healthTests
		if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
			t.Fatalf("%s/health_test.yaml: %v", dir, err)
		}
		if len(tests.Tests) == 0 {
			t.Fatalf("%s/health_test.yaml has no tests", dir)
		}
		for _, tc := range tests.Tests {
			name := filepath.Join(filepath.Base(dir), tc.InputPath)
			t.Run(name, func(t *testing.T) {
				obj := loadObject(t, filepath.Join(dir, tc.InputPath))
				got, err := runHealth(string(script), obj)
				if err != nil {
					t.Fatalf("health.lua failed: %v", err)
				}
				if *got != tc.HealthStatus {
					t.Errorf("health = %+v, want %+v", *got, tc.HealthStatus)
				}
			})
		}
	}
}

// The harness itself behaves like Argo CD's: an unknown status becomes Unknown, nil gives an empty status.
func TestHarnessLikeArgoCD(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"name": "x", "generation": int64(3)}}
	got, err := runHealth(`return {status = "Bogus", message = "x"}`, obj)
	if err != nil || *got != (healthStatus{Status: "Unknown", Message: invalidHealthStatus}) {
		t.Errorf("unknown status: got %+v, %v", got, err)
	}
	got, err = runHealth(`return {status = "Healthy", message = tostring(obj.metadata.generation)}`, obj)
	if err != nil || *got != (healthStatus{Status: "Healthy", Message: "3"}) {
		t.Errorf("obj global: got %+v, %v", got, err)
	}
	got, err = runHealth(`local json = require("json"); return {status = "Healthy", message = json.encode({a = 1})}`, obj)
	if err != nil || *got != (healthStatus{Status: "Healthy", Message: `{"a":1}`}) {
		t.Errorf("json module: got %+v, %v", got, err)
	}
	if _, err := runHealth(`return "Healthy"`, obj); err == nil {
		t.Error("a string return must fail as in Argo CD")
	}
}
