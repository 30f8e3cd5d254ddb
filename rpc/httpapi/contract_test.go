package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/rumor-dev/rumor/rpc/contract"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// apiContract checks every request the tests of this package send to a
// Server, and its answer, against rpc/httpapi/openapi.yaml (see checked).
var apiContract *contract.Checker

// TestMain runs the tests with the API contract checked, then: prints the
// coverage table with -v, fails on a contract failure seen after its test
// ended, and, when every test ran (no -run or -skip), fails if a route was
// never exercised.
func TestMain(m *testing.M) {
	c, err := contract.New(httpapi.New(rpctest.New(testNode, nil), nil).Routes())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	apiContract = c
	os.Exit(c.Run(m, true))
}

// checked returns opts with the API contract's middleware for t.
func checked(t testing.TB, opts httpapi.Options) httpapi.Options {
	opts.Middleware = apiContract.Middleware(t)
	return opts
}

// TestOpenAPIRoutes: the server's routes and the OpenAPI document's are the
// same.
func TestOpenAPIRoutes(t *testing.T) {
	for _, m := range apiContract.Mismatches() {
		t.Error(m)
	}
	if len(httpapi.New(rpctest.New(testNode, nil), nil).Routes()) < 30 {
		t.Error("Routes lists fewer routes than the server has")
	}
}

// TestOpenAPIServed: GET /v1/openapi.json serves the document as JSON.
func TestOpenAPIServed(t *testing.T) {
	a := startAgent(t, nil)
	resp, err := rawClient(a.sock).Get("http://rumor/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(want, []byte("{\n  \"openapi\": \"3.0.3\",\n  \"info\": {")) {
		t.Errorf("the JSON document does not keep the YAML's order: %.60q", want)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(b, want) {
		t.Fatalf("GET /v1/openapi.json: %d %q, %d bytes; want 200 application/json, the document", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.OpenAPI != "3.0.3" || doc.Paths["/v1/svc/{service}/{instance}"]["put"] == nil {
		t.Errorf("the document: openapi %q, %d paths, %v", doc.OpenAPI, len(doc.Paths), err)
	}
}
