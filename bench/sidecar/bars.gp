# SPDX-License-Identifier: Apache-2.0
# A clustered bar chart for bench/sidecar/report.py. Variables (gnuplot -e): data (a file whose
# first line names the columns: category, then one data plane per column), out (PNG), chart_title,
# ylabel, ncols (columns in data), logy (1 for a log scale), color_offset (so that a chart
# without the first plane keeps each plane's color).
set terminal png size 1100,520 font ",10" noenhanced
set output out
set title chart_title
set ylabel ylabel
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set grid ytics
set xtics rotate by -25 scale 0
set yrange [0:*]
if (logy) { set logscale y; set yrange [*:*] }
if (!exists("color_offset")) color_offset = 0
plot for [i=2:ncols] data using i:xtic(1) title columnheader(i) lc (i - 1 + color_offset)
