mod chart;
mod crds;
mod rke2;
