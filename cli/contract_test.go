package cli_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/rumor-dev/rumor/rpc/contract"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// apiContract checks every request the CLI sends to the test agents, and
// its answer, against rpc/httpapi/openapi.yaml.
var apiContract *contract.Checker

// TestMain runs the tests with the API contract checked, prints its
// coverage with -v, and fails on a contract failure seen after its test
// ended.
func TestMain(m *testing.M) {
	c, err := contract.New(httpapi.New(rpctest.New(self, nil), nil).Routes())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	apiContract = c
	os.Exit(c.Run(m, false))
}
