package analysis

import (
	"math"
	"sort"
)

// Alternative is the alternative hypothesis of a Mann-Whitney U test about
// sample x (the canary) against sample y (the baseline).
type Alternative int

// Alternatives.
const (
	TwoSided Alternative = iota // x and y differ
	Greater                     // x is stochastically greater than y
	Less                        // x is stochastically smaller than y
)

// UTest is the outcome of a Mann-Whitney U test.
type UTest struct {
	// U is the statistic of x: the number of pairs (xi, yj) with xi > yj,
	// ties counting one half (R's W, scipy's U1).
	U float64
	// Z is the normal deviate, with continuity and tie corrections.
	Z float64
	// P is the p-value under the alternative.
	P float64
}

// MannWhitneyU tests whether x and y come from the same distribution,
// with the normal approximation of U corrected for ties and for
// continuity (as R's wilcox.test(x, y, exact = FALSE, correct = TRUE) and
// scipy's mannwhitneyu(x, y, method="asymptotic")). It needs both samples
// non-empty; with no spread at all (every value equal) P is 1.
func MannWhitneyU(x, y []float64, alt Alternative) UTest {
	n1, n2 := float64(len(x)), float64(len(y))
	if len(x) == 0 || len(y) == 0 {
		return UTest{P: math.NaN(), Z: math.NaN(), U: math.NaN()}
	}
	type obs struct {
		v    float64
		isX  bool
		rank float64
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v: v, isX: true})
	}
	for _, v := range y {
		all = append(all, obs{v: v})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].v < all[j].v })
	// Average ranks over runs of ties; tieSum is sum(t^3 - t) over runs.
	var tieSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		r := float64(i+1+j) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			all[k].rank = r
		}
		t := float64(j - i)
		tieSum += t*t*t - t
		i = j
	}
	var r1 float64
	for _, o := range all {
		if o.isX {
			r1 += o.rank
		}
	}
	u := r1 - n1*(n1+1)/2
	n := n1 + n2
	mu := n1 * n2 / 2
	sigma := math.Sqrt(n1 * n2 / 12 * ((n + 1) - tieSum/(n*(n-1))))
	res := UTest{U: u}
	if sigma == 0 {
		res.P = 1
		return res
	}
	d := u - mu
	switch alt {
	case Greater:
		res.Z = (d - 0.5) / sigma
		res.P = upperTail(res.Z)
	case Less:
		res.Z = (d + 0.5) / sigma
		res.P = 1 - upperTail(res.Z)
	default:
		c := 0.0
		if d > 0 {
			c = 0.5
		} else if d < 0 {
			c = -0.5
		}
		res.Z = (d - c) / sigma
		res.P = math.Min(1, 2*upperTail(math.Abs(res.Z)))
	}
	return res
}

// upperTail is P(Z > z) for a standard normal Z.
func upperTail(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }
