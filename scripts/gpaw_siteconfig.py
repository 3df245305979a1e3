"""GPAW build configuration used by `make`: serial build (one single-core job per core
beats MPI on our machines), Debian's libxc and OpenBLAS."""

mpi = False
compiler = "g++"
libraries = ["xc", "blas"]
