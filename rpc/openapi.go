package rpc

import (
	_ "embed" // the OpenAPI document
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"gopkg.in/yaml.v3"
)

// openapiYAML is the API's OpenAPI 3.0 document, written by hand next to
// the server; the contract test (package rpc/contract) checks that the
// server answers as it says.
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPIYAML returns the API's OpenAPI 3.0 document as YAML, as written.
func OpenAPIYAML() []byte { return append([]byte(nil), openapiYAML...) }

var openapiJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, fmt.Errorf("rpc: OpenAPI document: %w", err)
	}
	v, err := jsonValue(doc)
	if err != nil {
		return nil, fmt.Errorf("rpc: OpenAPI document: %w", err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rpc: OpenAPI document: %w", err)
	}
	return append(b, '\n'), nil
})

// OpenAPI returns the API's OpenAPI 3.0 document as JSON, as the server
// serves it at GET /v1/openapi.json.
func OpenAPI() ([]byte, error) {
	b, err := openapiJSON()
	return append([]byte(nil), b...), err
}

// jsonValue turns a decoded YAML value into one encoding/json takes: a
// mapping's keys must be strings.
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			jx, err := jsonValue(x)
			if err != nil {
				return nil, err
			}
			v[k] = jx
		}
		return v, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping key %v (%T) is not a string: quote it", k, k)
			}
			jx, err := jsonValue(x)
			if err != nil {
				return nil, err
			}
			out[ks] = jx
		}
		return out, nil
	case []any:
		for i, x := range v {
			jx, err := jsonValue(x)
			if err != nil {
				return nil, err
			}
			v[i] = jx
		}
		return v, nil
	default:
		return v, nil
	}
}

// openapi serves GET /v1/openapi.json.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	b, err := openapiJSON()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
