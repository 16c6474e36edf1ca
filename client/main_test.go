package client_test

import (
	"testing"

	"github.com/orbit/orbit/internal/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }
