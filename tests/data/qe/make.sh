#!/usr/bin/env bash
# Regenerates the real Quantum ESPRESSO fixtures used by the I/O and symmetry tests
# (pw.x + pp.x from Debian's quantum-espresso, elfkit's own H pseudopotential, PBE, Gamma):
#   h4_triclinic: two H2 molecules in a skewed cell -> pw.out, ELF as cube and XSF
#   h2_pa3:       molecular hydrogen in the cubic Pa-3 structure -> ELF as cube
set -euo pipefail
cd "$(dirname "$0")"
pseudo_dir="$(cd ../../../src/elfkit/dft/pseudo && pwd)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

run() {  # name, cell lines, nat, positions lines (crystal coordinates)
  cat > "$scratch/$1.in" <<IN
&control
  calculation = 'scf', prefix = '$1', outdir = '$scratch', pseudo_dir = '$pseudo_dir'
/
&system
  ibrav = 0, nat = $3, ntyp = 1, ecutwfc = 25.0, ecutrho = 100.0
/
&electrons
  conv_thr = 1e-9
/
ATOMIC_SPECIES
H 1.008 H.pbe-tm.UPF
CELL_PARAMETERS angstrom
$2
ATOMIC_POSITIONS crystal
$4
K_POINTS gamma
IN
  pw.x -in "$scratch/$1.in" > "$1.pw.out"
}

elf() {  # name, output_format (6 cube, 5 xsf), file
  cat > "$scratch/pp.in" <<IN
&inputpp
  prefix = '$1', outdir = '$scratch', filplot = '$scratch/$1.dat', plot_num = 8
/
&plot
  iflag = 3, output_format = $2, fileout = '$3'
/
IN
  pp.x -in "$scratch/pp.in" > /dev/null
}

run h4_triclinic "3.2 0.0 0.0
0.4 3.0 0.0
0.3 0.5 3.4" 4 "H 0.10 0.20 0.15
H 0.30 0.25 0.20
H 0.55 0.70 0.60
H 0.60 0.72 0.82"
elf h4_triclinic 6 h4_triclinic.elf.cube
elf h4_triclinic 5 h4_triclinic.elf.xsf

x=0.0534
run h2_pa3 "4.0 0.0 0.0
0.0 4.0 0.0
0.0 0.0 4.0" 8 "$(python3 - <<PY
x = $x
sites = [(x, x, x), (0.5 - x, -x, 0.5 + x), (-x, 0.5 + x, 0.5 - x), (0.5 + x, 0.5 - x, -x)]
for s in sites + [tuple(-c for c in s) for s in sites]:
    print("H %.6f %.6f %.6f" % tuple(c % 1.0 for c in s))
PY
)"
elf h2_pa3 6 h2_pa3.elf.cube
rm -f h2_pa3.pw.out
sed -i "s#$scratch#SCRATCH#g; s#$pseudo_dir#PSEUDO_DIR#g" ./*.pw.out
