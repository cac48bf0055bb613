# Chinese business documents group amounts in thousands (¥1,234,567.00); Django's zh_Hans
# locale groups nothing, which makes money columns hard to read.
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
