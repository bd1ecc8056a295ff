package budget

import (
	"time"

	"github.com/rootuip/sre/pkg/rulegen"
)

// Recording rules read by this package: the generator's names (package
// rulegen is the source of truth).
const (
	ErrorEventsRecord      = rulegen.ErrorEventsRate5m
	TotalEventsRecord      = rulegen.TotalEventsRate5m
	ErrorRatioPeriodRecord = rulegen.ErrorRatioPeriod
	BudgetRemainingRecord  = rulegen.ErrorBudgetRemaining
)

// BurnRateRecord names the burn-rate recording of a window.
func BurnRateRecord(w time.Duration) string { return rulegen.BurnRateRecord(w) }
