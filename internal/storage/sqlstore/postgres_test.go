package sqlstore_test

import (
	"testing"

	"github.com/behalf-dev/behalf/internal/storage"
	"github.com/behalf-dev/behalf/internal/storage/conformance"
	"github.com/behalf-dev/behalf/internal/testutil/pgtest"
)

func newPostgres(t *testing.T) storage.Storage {
	return openStore(t, pgtest.NewDatabase(t))
}

func TestPostgres(t *testing.T) {
	conformance.RunTests(t, newPostgres)
}

func TestPostgresConcurrency(t *testing.T) {
	conformance.RunConcurrencyTests(t, newPostgres)
}
