package analysis

import (
	"math"
	"testing"
)

// The expected values come from the documentation of the reference
// implementations, or are worked out by hand in the comments.
func TestMannWhitneyU(t *testing.T) {
	// R, ?wilcox.test ("Two-sample test"): W = 35 for these samples.
	rx := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	ry := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	// scipy.stats.mannwhitneyu docs: males vs females, U1 = 17 and the
	// asymptotic two-sided p-value 0.11134688653314041.
	males := []float64{19, 22, 16, 29, 24}
	females := []float64{20, 11, 17, 12}
	// Ties, by hand: x = 1 2 2 3 4, y = 2 3 5 5 6. Pooled ranks: 1 -> 1,
	// the three 2s -> 3, the two 3s -> 5.5, 4 -> 7, the two 5s -> 8.5,
	// 6 -> 10. R1 = 1+3+3+5.5+7 = 19.5, U = 19.5 - 15 = 4.5 (pairs x > y:
	// 0 + 0.5 + 0.5 + 1.5 + 2). Ties sum(t^3-t) = 24+6+6 = 36, so
	// sigma^2 = 25/12 * (11 - 36/90) = 22.0833, sigma = 4.699291.
	// Less: z = (4.5 - 12.5 + 0.5)/sigma = -1.595986, p = Phi(z) = 0.055246.
	tx := []float64{1, 2, 2, 3, 4}
	ty := []float64{2, 3, 5, 5, 6}
	tests := []struct {
		name string
		x, y []float64
		alt  Alternative
		u, z float64
		p    float64
	}{
		{"scipy docs two-sided", males, females, TwoSided, 17, 6.5 / math.Sqrt(5*4*10/12.0), 0.11134688653314041},
		{"scipy docs reversed", females, males, TwoSided, 3, -6.5 / math.Sqrt(5*4*10/12.0), 0.11134688653314041},
		// sigma = sqrt(10*5*16/12) = 8.164966; z = (35-25-0.5)/sigma = 1.163507;
		// P(Z > z) = 0.122312 (R's exact p is 0.1272; this is exact = FALSE).
		{"R docs greater", rx, ry, Greater, 35, 9.5 / math.Sqrt(10*5*16/12.0), 0.12231180256349167},
		// z = (35-25+0.5)/sigma = 1.285976, Phi(z) = 0.900775.
		{"R docs less", rx, ry, Less, 35, 10.5 / math.Sqrt(10*5*16/12.0), 0.9007753482039937},
		{"ties less", tx, ty, Less, 4.5, -1.5959855297967944, 0.05524601202783397},
		// Two-sided: 2 * P(Z > 1.595986) = 0.110492.
		{"ties two-sided", tx, ty, TwoSided, 4.5, -1.5959855297967944, 0.11049202405566808},
		{"all equal", []float64{3, 3, 3}, []float64{3, 3}, Greater, 3, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MannWhitneyU(tc.x, tc.y, tc.alt)
			if got.U != tc.u {
				t.Errorf("U = %v, want %v", got.U, tc.u)
			}
			if math.Abs(got.Z-tc.z) > 1e-9 {
				t.Errorf("Z = %v, want %v", got.Z, tc.z)
			}
			if math.Abs(got.P-tc.p) > 1e-12 {
				t.Errorf("P = %v, want %v", got.P, tc.p)
			}
		})
	}
	if got := MannWhitneyU(nil, ry, Greater); !math.IsNaN(got.P) {
		t.Errorf("empty sample: P = %v, want NaN", got.P)
	}
}
