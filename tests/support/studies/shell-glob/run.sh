#!/bin/sh
# Sorts the input, then counts its words: two outputs named *.dat.
set -e
sort data/input.txt > sorted.dat
wc -w < data/input.txt > words.dat
