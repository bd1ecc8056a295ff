// Package hpa reads HorizontalPodAutoscalers for the scaling subsystem.
// It is apart from package kube so that kube, which runbook tests use,
// does not import pkg/scaling (which imports pkg/runbook).
package hpa

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rootuip/sre/pkg/kube"
	"github.com/rootuip/sre/pkg/scaling"
)

// HPAs reads HorizontalPodAutoscalers (autoscaling/v2): sred observes the
// HPAs of the scaling policies Kubernetes scales, it never changes them.
type HPAs struct {
	Client kubernetes.Interface
}

// New returns HPAs on the cluster of kubeconfig and context
// (in-cluster if kubeconfig is empty).
func New(kubeconfig, context string) (*HPAs, error) {
	c, err := kube.RESTConfig(kubeconfig, context)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &HPAs{Client: cs}, nil
}

// HPAStatus returns the current and desired replicas of an HPA and when it
// last scaled.
func (h *HPAs) HPAStatus(ctx context.Context, namespace, name string) (scaling.HPAStatus, error) {
	hpa, err := h.Client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return scaling.HPAStatus{}, err
	}
	st := scaling.HPAStatus{CurrentReplicas: hpa.Status.CurrentReplicas, DesiredReplicas: hpa.Status.DesiredReplicas}
	if hpa.Status.LastScaleTime != nil {
		st.LastScaleTime = hpa.Status.LastScaleTime.UTC()
	}
	return st, nil
}
