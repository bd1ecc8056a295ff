// Package kube holds sred's Kubernetes clients (client-go): the client of
// runbook kubernetes steps and the dynamic client of the Chaos Mesh driver.
// The subsystems that act on a cluster only know small interfaces of their
// own; cmd/sred passes these clients in (app.Options.Kubernetes), so that
// only sred links client-go and srectl does not.
package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

// RESTConfig returns the client configuration of a cluster: the kubeconfig
// file (and context, its current one if empty) if set, else the in-cluster
// service account.
func RESTConfig(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config: %w", err)
		}
		return c, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}

// Dynamic returns a dynamic client of the cluster (the Chaos Mesh driver's).
func Dynamic(kubeconfig, context string) (dynamic.Interface, error) {
	c, err := RESTConfig(kubeconfig, context)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return dc, nil
}

// Deployments acts on deployments and pods: the actions of runbook
// kubernetes steps.
type Deployments struct {
	Client kubernetes.Interface
}

// NewDeployments returns Deployments on the cluster of kubeconfig and context
// (in-cluster if kubeconfig is empty).
func NewDeployments(kubeconfig, context string) (*Deployments, error) {
	c, err := RESTConfig(kubeconfig, context)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Deployments{Client: cs}, nil
}

// FieldManager names sred in the changes it makes.
const FieldManager = "sred-runbook"

// Scale sets the replicas of a deployment to desired(current), retrying on
// conflicts, and returns the counts before and after (equal: unchanged).
func (d *Deployments) Scale(ctx context.Context, namespace, name string, desired func(current int32) int32) (from, to int32, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep, err := d.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		from = 1
		if dep.Spec.Replicas != nil {
			from = *dep.Spec.Replicas
		}
		to = desired(from)
		if to == from {
			return nil
		}
		dep.Spec.Replicas = &to
		_, err = d.Client.AppsV1().Deployments(namespace).Update(ctx, dep, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	return from, to, err
}

// RolloutRestart restarts a deployment's pods as `kubectl rollout restart`
// does: it stamps the pod template with the time at.
func (d *Deployments) RolloutRestart(ctx context.Context, namespace, name, at string) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, at)
	_, err := d.Client.AppsV1().Deployments(namespace).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: FieldManager})
	return err
}

// Patch applies a JSON merge patch to a deployment or a service.
func (d *Deployments) Patch(ctx context.Context, namespace, kind, name string, patch []byte) error {
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	switch kind {
	case "deployment":
		_, err := d.Client.AppsV1().Deployments(namespace).Patch(ctx, name, types.MergePatchType, patch, opts)
		return err
	case "service":
		_, err := d.Client.CoreV1().Services(namespace).Patch(ctx, name, types.MergePatchType, patch, opts)
		return err
	}
	return fmt.Errorf("patch: kind %q: want deployment or service", kind)
}

// DeletePod deletes a pod.
func (d *Deployments) DeletePod(ctx context.Context, namespace, name string) error {
	return d.Client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{})
}
