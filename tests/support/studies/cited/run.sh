#!/bin/sh
python3 analysis.py > values.txt
