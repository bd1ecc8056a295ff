package hpa

import (
	"context"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// HPAStatus reads what the HPA controller reports, through the typed
// autoscaling/v2 client.
func TestHPAStatus(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	cs := fake.NewClientset(&autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "production"},
		Status:     autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 4, DesiredReplicas: 6, LastScaleTime: &at},
	})
	h := &HPAs{Client: cs}
	st, err := h.HPAStatus(context.Background(), "production", "api")
	if err != nil {
		t.Fatal(err)
	}
	if st.CurrentReplicas != 4 || st.DesiredReplicas != 6 || !st.LastScaleTime.Equal(at.Time) {
		t.Fatalf("status %+v", st)
	}
	if _, err := h.HPAStatus(context.Background(), "production", "web"); err == nil {
		t.Fatal("no error for a missing HPA")
	}
}
